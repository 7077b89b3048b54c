"""One run per provider at a time, across processes: a Redis lease with Redis, else the database's
own lock (a PostgreSQL advisory lock, a lock file beside the SQLite file).

The Redis lease lapses by itself `MARQUEE_LEASE_SECONDS` after its last renewal; the database locks
are released by PostgreSQL or the kernel the moment their process dies.
"""

import fcntl
import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import redis
import sqlalchemy as sa
from redis.exceptions import LockError, LockNotOwnedError, RedisError
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from core.errors import MarqueeError
from core.logs import redact

log = logging.getLogger("marquee.locks")
# A lock call must not hang a run on an unreachable Redis host.
REDIS_TIMEOUT_SECONDS = 5.0


class LockUnavailable(MarqueeError):
    """The lock's store cannot be reached, so nobody can tell whether another run holds it."""


class RunLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock without waiting; False when another run holds it."""

    def renew(self) -> bool:
        """Extend the lease; False when this run no longer holds it. LockUnavailable: cannot tell."""

    def release(self) -> None:
        """Give the lock back if this run still holds it; safe to call twice."""

    def expires_in(self) -> float | None:
        """Seconds until the lock, held by another run, lapses by itself, when that is known."""


class Locks(Protocol):
    def for_provider(self, provider: str) -> RunLock: ...


class RedisLease:
    def __init__(self, client: redis.Redis, name: str, *, url: str, lease_seconds: float) -> None:
        self._client, self._name, self._url = client, name, url
        # thread_local=False: the heartbeat thread renews the token the run's thread acquired.
        self._lock = client.lock(name, timeout=lease_seconds, blocking=False, thread_local=False)

    def _unavailable(self, exc: RedisError) -> LockUnavailable:
        return LockUnavailable(
            f"run lock unavailable: Redis at {redact(self._url)} cannot be reached ({exc})"
        )

    def acquire(self) -> bool:
        try:
            return bool(self._lock.acquire(blocking=False))
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    def renew(self) -> bool:
        try:
            self._lock.reacquire()
        except LockNotOwnedError:
            return False
        except LockError:
            return False  # this run never held it (or gave it up)
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return True

    def release(self) -> None:
        try:
            if self._lock.local.token is not None and self._lock.owned():
                self._lock.release()
        except LockError:
            log.warning("run lock lapsed before release", extra={"lock": self._name})
        except RedisError as exc:
            log.warning(
                "run lock not released: Redis cannot be reached; its lease lapses by itself",
                extra={"lock": self._name, "error": str(exc)},
            )
        self._lock.local.token = None

    def expires_in(self) -> float | None:
        try:
            milliseconds = int(self._client.pttl(self._name))
        except RedisError:
            return None
        return milliseconds / 1000 if milliseconds > 0 else None


class RedisLocks:
    """Keys `<prefix>lock:fetch:<provider>`, each a lease of `lease_seconds`."""

    def __init__(self, url: str, *, prefix: str, lease_seconds: float) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
        )
        self._url, self._prefix, self._lease = url, prefix, lease_seconds

    def for_provider(self, provider: str) -> RunLock:
        name = f"{self._prefix}lock:fetch:{provider}"
        return RedisLease(self._client, name, url=self._url, lease_seconds=self._lease)


def advisory_key(provider: str) -> int:
    """A signed 64-bit key per provider, the same in every process and every release."""
    digest = hashlib.blake2b(f"marquee:fetch:{provider}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLock:
    """A session-level advisory lock on a connection of its own, held for the whole run."""

    def __init__(self, engine: Engine, key: int) -> None:
        self._engine, self._key = engine, key
        self._connection: Connection | None = None
        self._guard = threading.Lock()  # the heartbeat thread pings the same connection

    def acquire(self) -> bool:
        try:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise LockUnavailable(f"run lock unavailable: {type(exc).__name__}") from exc
        try:
            taken = connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar()
        except BaseException:
            connection.invalidate()
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def renew(self) -> bool:
        with self._guard:
            if self._connection is None:
                return False
            try:
                self._connection.execute(sa.text("SELECT 1"))
            except SQLAlchemyError:
                # The session is gone, and its lock with it.
                return False
            return True

    def release(self) -> None:
        with self._guard:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            try:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            except SQLAlchemyError:
                connection.invalidate()  # closing the session releases the lock
            finally:
                connection.close()

    def expires_in(self) -> float | None:
        return None  # held until its holder ends, or its session dies


class AdvisoryLocks:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def for_provider(self, provider: str) -> RunLock:
        return AdvisoryLock(self._engine, advisory_key(provider))


class FileLock:
    """`flock` on a file beside the SQLite database; the kernel drops it when the process dies."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._guard = threading.Lock()

    def acquire(self) -> bool:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockUnavailable(f"run lock unavailable: cannot open {self._path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def renew(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        with self._guard:
            fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def expires_in(self) -> float | None:
        return None


class FileLocks:
    def __init__(self, database: Path) -> None:
        self._database = database

    def for_provider(self, provider: str) -> RunLock:
        return FileLock(self._database.with_name(f"{self._database.name}.fetch-{provider}.lock"))


class LocalRunLock:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._owned = False

    def acquire(self) -> bool:
        self._owned = self._lock.acquire(blocking=False)
        return self._owned

    def renew(self) -> bool:
        return self._owned

    def release(self) -> None:
        if self._owned:
            self._owned = False
            self._lock.release()

    def expires_in(self) -> float | None:
        return None


class LocalLocks:
    """For an in-memory SQLite database, which no other process can open anyway."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def for_provider(self, provider: str) -> RunLock:
        with self._guard:
            lock = self._locks.setdefault(provider, threading.Lock())
        return LocalRunLock(lock)


def create_locks(
    *, redis_url: str | None, prefix: str, lease_seconds: float, engine: Engine
) -> Locks:
    if redis_url:
        return RedisLocks(redis_url, prefix=prefix, lease_seconds=lease_seconds)
    if engine.dialect.name == "postgresql":
        return AdvisoryLocks(engine)
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return LocalLocks()
    return FileLocks(Path(database).resolve())
