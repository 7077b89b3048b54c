"""Imports run one way: each layer may use the layers below it, never one above.

    core.errors, core.settings              the foundation
    core.logs                               log lines, which read the settings
    core.feeds                              what a provider's fetch and parse may use
    core.plugins                            hook spec, provider contract, registry
    core.store                              database, models, upsert, search, migrations
    core.ingest, core.runs                  the fetch pipeline; the run record
    core.scheduling                         the fetch job, retries, locks, schedulers, Celery
    api, core.devkit, marquee               HTTP; the scaffold; the public plugin API and kit
    core.cli, migrations                    the command, alembic's environment

The provider contract's default fetch downloads its URL, so `feeds` sits below `plugins`.
"""

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("core", "api", "marquee", "providers")
RANKS = {
    "core.errors": 0,
    "core.settings": 0,
    "core.logs": 1,
    "core.feeds": 2,
    "core.plugins": 3,
    "core.store": 4,
    "core.ingest": 5,
    "core.runs": 5,
    "core.retention": 5,
    "core.scheduling": 6,
    "api": 7,
    "core.devkit": 7,
    "marquee": 7,
    "core.cli": 8,
    "migrations": 8,
}


def layer(module: str) -> str:
    """The layer a dotted module name belongs to: its longest prefix in RANKS."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in RANKS:
            return ".".join(parts[:end])
    raise AssertionError(f"{module} belongs to no layer: add it to RANKS")


def imported_modules(source: str) -> Iterator[str]:
    """Every first-party module `source` imports, at the top or inside a function."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from core import errors` imports core.errors; a name that is no module adds a part
            # that `layer` ignores.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] in FIRST_PARTY)


def upward_imports(modules: Iterable[tuple[str, str]]) -> list[str]:
    """`importer imports imported` for each import that reaches a layer at or above its own."""
    found = []
    for name, source in modules:
        own = layer(name)
        for imported in imported_modules(source):
            if imported.split(".")[0] == "providers":
                found.append(f"{name} imports {imported}: providers are found by entry point")
                continue
            other = layer(imported)
            if other != own and RANKS[other] >= RANKS[own]:
                found.append(f"{name} ({own}) imports {imported} ({other})")
    return found


def source_modules() -> Iterator[tuple[str, str]]:
    for top in ("core", "api", "marquee", "migrations"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if not path.read_text().strip():
                continue
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield dotted.removesuffix(".__init__"), path.read_text()


def test_no_module_imports_a_layer_above_its_own() -> None:
    assert upward_imports(source_modules()) == []


def test_no_module_under_core_imports_api() -> None:
    offenders = [
        f"{name} imports {imported}"
        for name, source in source_modules()
        if name.startswith("core.")
        for imported in imported_modules(source)
        if imported.split(".")[0] == "api"
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("module", "source", "why"),
    [
        ("core.store.search", "from core.scheduling.job import run_fetch", "store uses scheduling"),
        ("core.plugins.registry", "def f():\n    import api.app\n", "a lazy import of api"),
        ("core.ingest.pipeline", "from core.runs import records", "a sibling layer"),
        ("core.feeds.download", "import providers.fever.parser", "core reaches a provider"),
    ],
)
def test_the_check_finds_an_upward_import(module: str, source: str, why: str) -> None:
    assert upward_imports([(module, source)]), why


def test_the_check_allows_imports_downward_and_within_a_layer() -> None:
    modules = [
        ("core.scheduling.job", "from core.store.db import transaction\nfrom core import errors"),
        ("core.store.search", "from core.store.models import Event"),
        ("api.app", "from core.plugins.registry import load_registry"),
    ]
    assert upward_imports(modules) == []
