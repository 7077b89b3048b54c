"""Running alembic from Marquee itself, wherever the process starts and however it was installed."""

from pathlib import Path

from alembic import command
from alembic.config import Config

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
