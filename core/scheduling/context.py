"""What a process needs to run fetch jobs, built once per process."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from core.plugins.registry import Registry, load_registry
from core.scheduling.lease import ActiveRuns
from core.scheduling.locks import Locks, create_locks
from core.scheduling.retry import RetryPolicy
from core.settings import Settings, get_settings
from core.store.db import create_db_engine
from core.store.models import utcnow


@dataclass(slots=True)
class JobContext:
    settings: Settings
    registry: Registry
    engine: Engine
    locks: Locks
    # When a Retry-After wait ends is read from this clock; tests move it instead of sleeping.
    clock: Callable[[], datetime] = field(default=utcnow)
    # The leases of this process's runs in flight, for a shutdown to close as interrupted.
    active: ActiveRuns = field(default_factory=ActiveRuns)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.settings.MARQUEE_RETRY_MAX_ATTEMPTS,
            backoff_seconds=self.settings.MARQUEE_RETRY_BACKOFF_SECONDS,
            backoff_max_seconds=self.settings.MARQUEE_RETRY_BACKOFF_MAX_SECONDS,
        )


def build_context(
    settings: Settings, *, registry: Registry | None = None, engine: Engine | None = None
) -> JobContext:
    engine = engine if engine is not None else create_db_engine(settings)
    locks = create_locks(
        redis_url=settings.REDIS_URL,
        prefix=settings.MARQUEE_REDIS_KEY_PREFIX,
        lease_seconds=settings.MARQUEE_LEASE_SECONDS,
        engine=engine,
    )
    return JobContext(
        settings=settings,
        registry=registry if registry is not None else load_registry(settings),
        engine=engine,
        locks=locks,
    )


_context: JobContext | None = None
_context_guard = threading.Lock()


def process_context() -> JobContext:
    """The context of a worker process, built on first use (after any fork)."""
    global _context
    with _context_guard:
        if _context is None:
            _context = build_context(get_settings())
        return _context
