"""`marquee new-provider NAME`: write a ready plugin package whose own contract tests pass."""

from importlib.resources import files
from pathlib import Path
from string import Template

from core.errors import MarqueeError
from core.plugins.contract import check_provider_name

TEMPLATES = files("core.devkit").joinpath("templates", "provider")

# Template file -> where it goes in the new package (formatted with the names below).
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "{package}/__init__.py",
    "plugin.py.tmpl": "{package}/plugin.py",
    "feed.json.tmpl": "tests/fixtures/feed.json",
    "broken_feed.json.tmpl": "tests/fixtures/broken_feed.json",
    "test_contract.py.tmpl": "tests/test_{name}_contract.py",
}


class ScaffoldError(MarqueeError):
    """The package cannot be written as asked (bad name, directory in use)."""


def names_for(name: str) -> dict[str, str]:
    """Every spelling of the provider's name the templates use."""
    try:
        check_provider_name(name)
    except ValueError as exc:
        raise ScaffoldError(str(exc)) from None
    words = name.split("_")
    return {
        "name": name,
        "upper": name.upper(),
        "package": f"marquee_{name}",
        "dist": f"marquee-{name.replace('_', '-')}",
        "class_name": "".join(word.capitalize() for word in words if word),
        "title": " ".join(word.capitalize() for word in words if word) + " events feed",
    }


def new_provider(name: str, directory: Path | None = None) -> list[Path]:
    """Write the package for provider `name` into `directory` (default `./marquee-<name>`);
    return the files written. Refuses a directory that already has files in it."""
    values = names_for(name)
    target = directory or Path(values["dist"])
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty; choose --directory")
    written = []
    for template_name, relative in LAYOUT.items():
        text = Template(TEMPLATES.joinpath(template_name).read_text()).substitute(values)
        path = target / relative.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
