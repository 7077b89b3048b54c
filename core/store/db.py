"""The engines: PostgreSQL through psycopg 3 in production, a SQLite file by default.

`create_db_engine` serves writers and operator reads; `create_read_engine` the API's search path.
Neither ever logs statement parameters (feed content), and on PostgreSQL both notice a dead peer
through TCP keepalives and `tcp_user_timeout`.
"""

import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
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


def create_api_engine(settings: Settings) -> Engine:
    """The engine of an API process's other routes (/providers, /ready, /metrics): as
    `create_db_engine`, plus a server-side statement timeout and a watchdog that cuts any
    connection held past DATABASE_CONNECT_TIMEOUT_SECONDS, so a frozen database cannot hold a
    request (or a threadpool thread) for longer than that."""
    timeout = settings.DATABASE_CONNECT_TIMEOUT_SECONDS
    url = sa.make_url(settings.DATABASE_URL)
    if url.get_backend_name() == "sqlite":
        engine = create_db_engine(settings)
    else:
        connect_args = _postgres_connect_args(settings, tcp_user_timeout=timeout)
        connect_args["options"] = f"-c statement_timeout={int(timeout * 1000)}"
        # No pre-ping: it runs before the checkout the watchdog sees, so a frozen database would
        # hold it forever; a connection found dead fails its request once and is discarded.
        engine = sa.create_engine(
            url,
            pool_pre_ping=False,
            pool_size=5,
            max_overflow=10,
            pool_timeout=timeout,
            hide_parameters=True,
            connect_args=connect_args,
        )
    CheckoutWatchdog(engine, timeout).start()
    return engine


class CheckoutWatchdog:
    """Cuts (socket shut down, or SQLite interrupted) every connection checked out for longer
    than `limit` seconds; the statement waiting on it fails, and the connection is discarded."""

    TICK = 0.2

    def __init__(self, engine: Engine, limit: float) -> None:
        self.limit = limit
        self._out: dict[int, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._engine = weakref.ref(engine)
        sa.event.listen(engine, "checkout", self._checkout)
        sa.event.listen(engine, "checkin", self._checkin)
        self._cut = interrupt if engine.dialect.name == "sqlite" else shut_down

    def start(self) -> None:
        threading.Thread(target=self._watch, name="marquee-db-watchdog", daemon=True).start()

    def _checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        with self._lock:
            self._out[id(dbapi_connection)] = (time.monotonic() + self.limit, dbapi_connection)

    def _checkin(self, dbapi_connection: Any, _record: Any) -> None:
        with self._lock:
            self._out.pop(id(dbapi_connection), None)

    def _watch(self) -> None:
        while self._engine() is not None:  # ends with the engine
            time.sleep(self.TICK)
            now = time.monotonic()
            with self._lock:
                due = [key for key, (deadline, _) in self._out.items() if deadline <= now]
                for key in due:
                    self._cut(self._out.pop(key)[1])


def shut_down(connection: Any) -> None:
    """Wake a thread blocked reading a PostgreSQL connection: its socket reads EOF."""
    try:
        duplicate = socket.socket(fileno=os.dup(connection.fileno()))
    # psycopg.Error: the connection is lost already, so nothing waits on it; the watchdog thread
    # calling this must live on to cut the next one.
    except (OSError, ValueError, AttributeError, psycopg.Error):
        return
    with contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)
    duplicate.close()


def interrupt(connection: Any) -> None:
    """Stop the statement a SQLite connection is running, from another thread."""
    with contextlib.suppress(Exception):
        connection.interrupt()


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
