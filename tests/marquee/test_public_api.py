"""`marquee` is the one import a plugin author needs, and everything Marquee ships for plugin
authors (built-in providers, the example plugin, the scaffold's templates, the guide) uses only it."""

import ast
import re
from pathlib import Path
from string import Template

import pytest
import yaml

import marquee
from core.devkit.scaffold import LAYOUT, TEMPLATES, names_for
from marquee.testing.support import EVENT_SUMMARY_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
INTERNAL = ("core", "api")


def test_the_plugin_api_is_one_import() -> None:
    from marquee import (  # noqa: F401
        FeedError,
        InvalidItem,
        ParsedEvent,
        ParseResult,
        PermanentError,
        Provider,
        ProviderSettings,
        TransientError,
        hookimpl,
        iterate_pushed,
        wall_clock,
    )
    from marquee.testing import ProviderContract  # noqa: F401


def test_every_public_name_is_listed_and_importable() -> None:
    for name in marquee.__all__:
        assert hasattr(marquee, name), name


def test_the_distribution_is_ours_and_knows_its_version() -> None:
    assert marquee.DISTRIBUTION == "marquee-events"
    assert re.fullmatch(r"\d+\.\d+\.\d+", marquee.__version__)
    assert marquee.__version__ != "0.0.0", "marquee-events is installed in this environment"


def imports_of(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def internal_imports(source: str, own: str) -> list[str]:
    """Imports of Marquee's internals, or of another provider's package, in `source`."""
    return sorted(
        module
        for module in imports_of(source)
        if module.split(".")[0] in INTERNAL
        or (module.split(".")[0] == "providers" and not module.startswith(own))
    )


def plugin_sources() -> list[tuple[str, str, str]]:
    """(where, source, own package) of every file a plugin author reads or is given."""
    found = []
    for path in sorted((ROOT / "providers").rglob("*.py")):
        own = ".".join(path.relative_to(ROOT).parts[:2])
        found.append((str(path.relative_to(ROOT)), path.read_text(), own))
    for path in sorted((ROOT / "examples").rglob("*.py")):
        found.append((str(path.relative_to(ROOT)), path.read_text(), "marquee_example_json"))
    values = names_for("acme_tickets")
    for template, target in LAYOUT.items():
        if target.endswith(".py"):
            text = Template(TEMPLATES.joinpath(template).read_text()).substitute(values)
            found.append((f"core/devkit/templates/provider/{template}", text, values["package"]))
    return found


@pytest.mark.parametrize(("where", "source", "own"), plugin_sources(), ids=lambda v: v[:60])
def test_plugin_code_imports_only_the_public_api(where: str, source: str, own: str) -> None:
    assert internal_imports(source, own) == [], f"{where} imports Marquee internals"


def test_the_guide_imports_only_the_public_api() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", guide, flags=re.DOTALL)
    assert blocks
    for block in blocks:
        assert internal_imports(block, own="providers.ical") == [], block[:200]


def test_the_check_finds_an_internal_import() -> None:
    assert internal_imports("from core.plugins.contract import Provider", own="x") == [
        "core.plugins.contract"
    ]
    assert internal_imports("def f():\n    import api.app\n", own="x") == ["api.app"]
    assert internal_imports("from providers.fever import parser", own="providers.ical") == [
        "providers.fever"
    ]


def test_the_kit_carries_the_contracts_event_summary() -> None:
    contract = yaml.safe_load((ROOT / "api" / "spec" / "swagger.yaml").read_text())
    assert contract["components"]["schemas"]["EventSummary"] == EVENT_SUMMARY_SCHEMA
