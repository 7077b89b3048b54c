"""The author's guide keeps up with the code: every hook has a heading carrying its exact signature
and a test, the tutorial's code runs as written, and it is exactly what the scaffold writes."""

import ast
import io
import json
import re
import types
from pathlib import Path

import pytest

from core.devkit.scaffold import new_provider
from core.plugins import hookspecs
from core.plugins.registry import load_registry
from core.settings import Settings
from marquee import InvalidItem, ParsedEvent

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"
PLUGIN_TESTS = ROOT / "tests" / "core" / "plugins" / "test_plugins.py"


def hook_signatures() -> dict[str, str]:
    """Each hook of core/plugins/hookspecs.py as written in the source: `name(args) -> Return`."""
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    signatures = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            ast.unparse(decorator).startswith("hookspec") for decorator in node.decorator_list
        ):
            returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
            signatures[node.name] = f"{node.name}({ast.unparse(node.args)}){returns}"
    return signatures


def guide_headings() -> list[str]:
    return [line for line in GUIDE.read_text().splitlines() if line.startswith("#")]


def section(title: str) -> str:
    """The guide's text under the `## title` heading, up to the next `## ` heading."""
    text = GUIDE.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


HOOKS = hook_signatures()


def test_hookspecs_declare_at_least_one_hook() -> None:
    # Guards the AST reading above: a hook it failed to see would go unchecked.
    registered = {
        name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "marquee_spec")
    }
    assert set(HOOKS) == registered and HOOKS


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_has_a_heading_with_its_exact_signature(name: str) -> None:
    assert f"### `{HOOKS[name]}`" in guide_headings(), f"docs/plugins.md lacks ### `{HOOKS[name]}`"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_has_a_test(name: str) -> None:
    tests = {
        node.name
        for node in ast.parse(PLUGIN_TESTS.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }
    assert f"test_hook_{name}" in tests, f"tests/test_plugins.py lacks test_hook_{name}"


def test_hook_reference_documents_no_hook_that_does_not_exist() -> None:
    documented = re.findall(r"^### `(\w+)\(", section("Hook reference"), flags=re.MULTILINE)
    assert documented and set(documented) <= set(HOOKS)


def tutorial_blocks(language: str) -> list[str]:
    tutorial = section("Tutorial: a provider from nothing")
    return re.findall(rf"```{language}\n(.*?)\n```", tutorial, flags=re.DOTALL)


def plugin_blocks() -> list[str]:
    """The tutorial's plugin module; the test module imports the package the tutorial writes."""
    return [block for block in tutorial_blocks("python") if "ProviderContract" not in block]


def without_docstring(source: str) -> str:
    return source[source.index('"""\n\n', 3) + 5 :].rstrip("\n")


def test_tutorial_shows_exactly_the_code_the_scaffold_writes(tmp_path: Path) -> None:
    new_provider("acme_tickets", tmp_path / "acme")
    package = tmp_path / "acme"
    plugin = (package / "marquee_acme_tickets" / "plugin.py").read_text()
    assert "\n\n\n".join(plugin_blocks()) == without_docstring(plugin)
    tests = (package / "tests" / "test_acme_tickets_contract.py").read_text()
    assert [b for b in tutorial_blocks("python") if "ProviderContract" in b] == [
        without_docstring(tests)
    ]
    assert tutorial_blocks("toml") == [(package / "pyproject.toml").read_text().rstrip("\n")]


def test_tutorial_code_runs_and_registers_a_working_provider() -> None:
    code = "\n\n\n".join(plugin_blocks())
    module = types.ModuleType("tutorial_plugin")
    exec(compile(code, str(GUIDE), "exec"), module.__dict__)

    registry = load_registry(
        Settings(MARQUEE_PROVIDERS=["acme_tickets"]),
        extra_plugins={"tutorial": module},
        entry_point_group=None,
    )
    entry = registry.configured("acme_tickets")
    feed = {
        "events": [
            {"id": 7, "title": "Jazz", "start": "2030-05-01T20:00:00", "status": "on_sale"},
            {"id": 8, "start": "2030-05-02"},
        ]
    }
    results = list(entry.provider.parse(entry.settings, io.BytesIO(json.dumps(feed).encode())))
    assert isinstance(results[0], ParsedEvent) and results[0].on_sale
    assert isinstance(results[1], InvalidItem) and results[1].key == "8"
    assert entry.masked_settings()["api_key"] is None
