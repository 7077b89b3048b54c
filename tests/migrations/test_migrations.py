"""The schema changes only through migrations: a migrated database matches the models exactly."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.store.migrate import alembic_config, upgrade
from tests.conftest import POSTGRES_ADMIN_URL


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database that no migration has touched yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"marquee_migrations_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()


def schema_diff(url: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def test_migrations_have_a_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())

    assert len(script.get_heads()) == 1


def test_upgrade_head_creates_every_model_table(fresh_url: str) -> None:
    upgrade(fresh_url)

    assert set(SQLModel.metadata.tables) <= tables(fresh_url)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(fresh_url) == head


def test_autogenerate_finds_no_difference_after_upgrade_head(fresh_url: str) -> None:
    upgrade(fresh_url)

    assert schema_diff(fresh_url) == []


def test_upgrade_creates_the_index_that_serves_search(fresh_url: str) -> None:
    upgrade(fresh_url)

    engine = sa.create_engine(fresh_url)
    try:
        with engine.connect() as connection:
            indexes = {i["name"]: i for i in sa.inspect(connection).get_indexes("event")}
    finally:
        engine.dispose()
    assert indexes["ix_event_searchable_starts_at"]["column_names"] == ["starts_at", "id"]


def test_upgrade_twice_is_harmless(fresh_url: str) -> None:
    upgrade(fresh_url)
    upgrade(fresh_url)

    assert schema_diff(fresh_url) == []


def test_downgrade_base_removes_every_table_and_upgrade_restores_them(fresh_url: str) -> None:
    upgrade(fresh_url)

    command.downgrade(alembic_config(fresh_url), "base")

    assert tables(fresh_url) & set(SQLModel.metadata.tables) == set()
    assert current_revision(fresh_url) is None

    upgrade(fresh_url)
    assert schema_diff(fresh_url) == []
