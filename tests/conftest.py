"""Shared fixtures: real PostgreSQL and SQLite databases, a local HTTP server playing providers,
and an environment that a developer's own `.env` or shell cannot leak into."""

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.plugins.registry import Registry, load_registry
from core.settings import Settings
from core.store.db import create_db_engine
from core.store.migrate import upgrade
from tests.support.example_plugin import install_example_plugin
from tests.support.feed_server import FeedServer

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_ADMIN_URL = os.environ.get(
    "MARQUEE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_PREFIXES = ("MARQUEE_", "DATABASE_", "REDIS_URL")


def fixture_bytes(*parts: str) -> bytes:
    return FIXTURES.joinpath(*parts).read_bytes()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts from Marquee's defaults, in an empty working directory (no `.env`)."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    # An app under test sees a fetch at once (its cached answers live a millisecond); the tests of
    # the cache itself set the interval they test.
    monkeypatch.setenv("MARQUEE_DATA_VERSION_CHECK_SECONDS", "0.001")
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped afterwards."""
    name = f"marquee_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def _truncate_all(engine: Engine) -> None:
    with engine.begin() as connection:
        tables = [
            name for name in sa.inspect(connection).get_table_names() if name != "alembic_version"
        ]
        if tables:
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind Marquee supports."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(url)
        _truncate_all(engine)
        engine.dispose()
        return url
    path = tmp_path / "marquee.db"
    # The template is in WAL mode and its migration engine may still be open: a plain file copy
    # would miss what sits in the -wal file, so copy through SQLite's backup API.
    template = sqlite3.connect(request.getfixturevalue("sqlite_template"))
    copy = sqlite3.connect(path)
    try:
        template.backup(copy)
    finally:
        copy.close()
        template.close()
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Settings()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def example_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed example plugin; put it on the path to discover it."""
    return install_example_plugin(tmp_path_factory.mktemp("example-plugin"))


@pytest.fixture
def with_example_plugin(example_plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example plugin discoverable through its entry point, in this process, for one test."""
    monkeypatch.syspath_prepend(str(example_plugin_site))
    return example_plugin_site


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return load_registry(settings)


@pytest.fixture
def client(settings: Settings, engine: Engine, registry: Registry) -> Iterator[TestClient]:
    from api.app import create_app

    app = create_app(settings, engine=engine, registry=registry)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
