"""One run per provider at a time: a Redis lock across workers, a thread lock within one process."""

import logging
import threading
from typing import Protocol

import redis
from redis.exceptions import LockError

log = logging.getLogger("marquee.locks")


class RunLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock without waiting; False when another run holds it."""

    def release(self) -> None:
        """Give the lock back if this run still owns it."""


class Locks(Protocol):
    def for_provider(self, provider: str) -> RunLock: ...


class RedisRunLock:
    def __init__(self, lock: redis.lock.Lock) -> None:
        self._lock = lock

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def release(self) -> None:
        # After a run longer than the timeout the key may be gone or someone else's: leave it.
        try:
            if self._lock.owned():
                self._lock.release()
        except LockError:
            log.warning("run lock expired before release", extra={"lock": self._lock.name})


class RedisLocks:
    """Keys `<prefix>lock:fetch:<provider>`; the timeout frees the lock of a crashed worker."""

    def __init__(self, url: str, *, prefix: str, timeout_seconds: int) -> None:
        self._client = redis.Redis.from_url(url)
        self._prefix = prefix
        self._timeout = timeout_seconds

    def for_provider(self, provider: str) -> RunLock:
        name = f"{self._prefix}lock:fetch:{provider}"
        return RedisRunLock(self._client.lock(name, timeout=self._timeout, blocking=False))


class LocalRunLock:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._owned = False

    def acquire(self) -> bool:
        self._owned = self._lock.acquire(blocking=False)
        return self._owned

    def release(self) -> None:
        if self._owned:
            self._owned = False
            self._lock.release()


class LocalLocks:
    """For the embedded single process (no Redis): other processes are not excluded."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def for_provider(self, provider: str) -> RunLock:
        with self._guard:
            lock = self._locks.setdefault(provider, threading.Lock())
        return LocalRunLock(lock)
