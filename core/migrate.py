"""Running alembic from Marquee itself, wherever the process starts and however it was installed."""

import logging
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from core.errors import ConfigError

log = logging.getLogger(__name__)

# `migrations` ships beside `core` (a sibling package), in a checkout and in an installed wheel alike;
# alembic.ini at the repository root is only for developers running the `alembic` command.
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.attributes["url"] = url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@cache
def head_revision() -> str | None:
    """The revision this code needs (read from the migration scripts once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision, the revision this code needs)."""
    head = head_revision()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head


def require_current_schema(engine: Engine) -> None:
    """Refuse to start against a database whose schema is not this code's. An unreachable database
    is not refused here: the process starts, and /ready says 503 until the database is back."""
    try:
        current, head = schema_revisions(engine)
    except OperationalError as exc:
        log.warning(
            "database unreachable at startup; schema not checked: %s", type(exc.orig).__name__
        )
        return
    if current != head:
        found = f"revision {current}" if current else "no Marquee schema (an empty database)"
        raise ConfigError(
            f"the database has {found}, this Marquee needs revision {head}: run `marquee migrate`"
        )
