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
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.attributes["url"] = url
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@cache
def _known_revisions() -> tuple[str | None, frozenset[str]]:
    """This code's head and every revision it knows (read from the scripts once per process)."""
    script = ScriptDirectory.from_config(alembic_config())
    return script.get_current_head(), frozenset(rev.revision for rev in script.walk_revisions())


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """(the database's revision, the revision this code needs)."""
    head, _ = _known_revisions()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head


def schema_is_behind(current: str | None, head: str | None) -> bool:
    """True when this code needs migrations the database lacks. A revision this code does not know
    is newer code's (a rolling deploy migrated first): older replicas keep serving, since
    migrations add before they remove."""
    _, known = _known_revisions()
    return current != head and (current is None or current in known)


def require_current_schema(engine: Engine) -> None:
    """Refuse to start against a database that lacks this code's schema. An unreachable database is
    not refused here: the process starts, and /ready says 503 until the database is back."""
    try:
        current, head = schema_revisions(engine)
    except OperationalError as exc:
        log.warning(
            "database unreachable at startup; schema not checked: %s", type(exc.orig).__name__
        )
        return
    if schema_is_behind(current, head):
        found = f"revision {current}" if current else "no Marquee schema (an empty database)"
        raise ConfigError(
            f"the database has {found}, this Marquee needs revision {head}: run `marquee migrate`"
        )
    if current != head:
        log.warning(
            "database schema %s is newer than this code's %s (rolling deploy?)", current, head
        )
