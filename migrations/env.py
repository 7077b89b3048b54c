"""Alembic reads the URL from Marquee's settings and the metadata from its models."""

from alembic import context
from sqlmodel import SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from core.settings import Settings
from core.store.db import create_db_engine

config = context.config
target_metadata = SQLModel.metadata


def _engine():  # type: ignore[no-untyped-def]
    connection = config.attributes.get("connection")
    if connection is not None:
        return connection
    url = config.attributes.get("url") or Settings().DATABASE_URL
    return create_db_engine(Settings(DATABASE_URL=url))


def run_migrations_offline() -> None:
    context.configure(
        url=config.attributes.get("url") or Settings().DATABASE_URL,
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = _engine()
    if not hasattr(connectable, "connect"):
        _run(connectable)
        return
    try:
        with connectable.connect() as connection:
            _run(connection)
    finally:
        connectable.dispose()  # a pool left open keeps SQLite's WAL unmerged and sockets alive


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
