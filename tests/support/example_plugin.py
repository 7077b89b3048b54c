"""The example plugin, installed as a third party would install it, for the tests about discovery.

It is not in Marquee's own environment (so no other test, nor `make run`, registers it): tests that
need it to be discovered install it once per session into a directory of their own and put that on
the path.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "marquee-example-json"
NAME = "example_json"
DISTRIBUTION = "marquee-example-json"


def install_example_plugin(site: Path) -> Path:
    """A real build and install of the example package (its own pyproject and build backend) into
    `site`; return `site`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site
