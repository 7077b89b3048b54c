"""The engines: PostgreSQL through psycopg 3 in production, a SQLite file by default.

`create_db_engine` serves writers and operator reads; `create_read_engine` the API's search path.
Neither ever logs statement parameters (feed content), and on PostgreSQL both notice a dead peer
through TCP keepalives and `tcp_user_timeout`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlmodel import Session

from core.settings import Settings

# Connections of one API process's search path; its capacity limiter is this size, so a search
# never waits for a connection.
READ_POOL_SIZE = 8
# A write may legitimately run for minutes; only a peer that stopped acknowledging for this long
# is given up on.
WRITER_TCP_USER_TIMEOUT_SECONDS = 60


def _postgres_connect_args(settings: Settings, *, tcp_user_timeout: float) -> dict[str, Any]:
    return {
        # libpq reads whole seconds and treats anything under 2 as 2.
        "connect_timeout": max(2, round(settings.DATABASE_CONNECT_TIMEOUT_SECONDS)),
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        "tcp_user_timeout": int(tcp_user_timeout * 1000),
    }


def create_db_engine(settings: Settings) -> Engine:
    url = sa.make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_pre_ping=True,
            hide_parameters=True,
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=settings.DATABASE_CONNECT_TIMEOUT_SECONDS,
        hide_parameters=True,
        connect_args=_postgres_connect_args(
            settings, tcp_user_timeout=WRITER_TCP_USER_TIMEOUT_SECONDS
        ),
    )


def create_read_engine(settings: Settings, url: URL | str | None = None) -> Engine:
    """The search path's engine: autocommit reads (no BEGIN/ROLLBACK), no pre-ping (a dead
    connection is retried once instead), a fixed pool, and every statement bounded by
    DATABASE_CONNECT_TIMEOUT_SECONDS on the server as well as by the caller's deadline."""
    url = sa.make_url(url or settings.DATABASE_URL)
    timeout = settings.DATABASE_CONNECT_TIMEOUT_SECONDS
    common: dict[str, Any] = {
        "isolation_level": "AUTOCOMMIT",
        "pool_pre_ping": False,
        "pool_reset_on_return": None,
        "pool_size": READ_POOL_SIZE,
        "max_overflow": 0,
        "pool_timeout": timeout,
        "hide_parameters": True,
    }
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": timeout}, **common
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = _postgres_connect_args(settings, tcp_user_timeout=timeout)
    connect_args["options"] = f"-c statement_timeout={int(timeout * 1000)}"
    # psycopg prepares a statement run this often on one connection: the search shapes are few.
    connect_args["prepare_threshold"] = 2
    return sa.create_engine(url, connect_args=connect_args, **common)


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
