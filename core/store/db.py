"""The engine: PostgreSQL through psycopg 3 in production, a SQLite file by default."""

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.settings import Settings


def create_db_engine(settings: Settings) -> Engine:
    url = sa.make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=settings.DATABASE_CONNECT_TIMEOUT_SECONDS,
        connect_args={"connect_timeout": max(1, round(settings.DATABASE_CONNECT_TIMEOUT_SECONDS))},
    )


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the API read while a fetch writes; the busy timeout waits out the writer's lock.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One session in one transaction: committed when the block ends, rolled back on error."""
    with Session(engine) as session, session.begin():
        yield session
