"""The retention job every trigger calls: `marquee retention`, the Celery task, the embedded scheduler.

Each provider's pass holds that provider's run lock, the one its fetches take, so retention never
runs beside a fetch of the same provider; a pass waits for a fetch in flight up to LOCK_WAIT_SECONDS,
renews the lock while it works, and is recorded in `retention_run` (a dry run is not).
"""

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from core.errors import MarqueeError
from core.retention.policy import RetentionPolicy, policies
from core.retention.stages import Pass, StageCounts
from core.scheduling.context import JobContext
from core.scheduling.locks import LockUnavailable, RunLock
from core.scheduling.outcome import database_error_text
from core.store.db import transaction
from core.store.models import RetentionRun, Trigger, utcnow

log = logging.getLogger("marquee.retention")
# How long a pass waits for its provider's fetch in flight before giving up (until the next pass).
LOCK_WAIT_SECONDS = 120.0
LOCK_POLL_SECONDS = 0.5


class LockLost(MarqueeError):
    """The provider's lock could not be renewed: another run may hold it now."""


class Stopped(MarqueeError):
    """The process running retention is stopping: the pass ends at the next batch."""


STOPPED = "the scheduler stopped before the pass finished; the next pass carries on"


@dataclass(slots=True)
class RetentionResult:
    provider: str
    policy: RetentionPolicy
    outcome: str = "success"  # success, failed or skipped (no stage set)
    counts: StageCounts = field(default_factory=StageCounts)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


def run_retention(
    context: JobContext,
    *,
    trigger: Trigger,
    providers: list[str] | None = None,
    dry_run: bool = False,
    stop: threading.Event | None = None,
) -> list[RetentionResult]:
    """Apply every provider's policy (or those of `providers`); never raises for a failed pass.
    ConfigError when a policy is out of order or a named provider is unknown. Once `stop` is set,
    a pass in progress ends (failed) at its next batch and the providers left are not started."""
    chosen = policies(context.settings, context.registry)
    if providers is not None:
        for name in providers:
            context.registry.configured(name)  # ConfigError naming the problem
        chosen = {name: chosen[name] for name in providers}
    results = []
    for name, policy in chosen.items():
        result = RetentionResult(name, policy)
        if not policy.active:
            result.outcome = "skipped"
        elif dry_run:
            _apply(context, result, dry_run=True)
        elif stop is not None and stop.is_set():
            break
        else:
            _run_locked(context, result, trigger, stop)
        results.append(result)
    return results


def _apply(
    context: JobContext, result: RetentionResult, *, dry_run: bool, keep_going=lambda: None
) -> None:
    settings = context.settings
    retention = Pass(
        context.engine,
        result.provider,
        result.policy,
        archive_dir=Path(settings.MARQUEE_ARCHIVE_DIR),
        batch_size=settings.MARQUEE_RETENTION_BATCH_SIZE,
        dry_run=dry_run,
        keep_going=keep_going,
    )
    try:
        retention.run()
    except MarqueeError as exc:
        result.outcome, result.error = "failed", str(exc)
    except SQLAlchemyError as exc:
        result.outcome, result.error = "failed", f"database error: {database_error_text(exc)}"
    # What it moved, even when it failed partway: each batch it committed stays done.
    result.counts = retention.counts


def _run_locked(
    context: JobContext, result: RetentionResult, trigger: Trigger, stop: threading.Event | None
) -> None:
    extra = {"provider": result.provider, "trigger": trigger}
    lock = context.locks.for_provider(result.provider)
    started = utcnow()
    try:
        acquired = _acquire(lock, stop)
    except LockUnavailable as exc:
        result.outcome, result.error = "failed", str(exc)
        log.error("retention not run: lock unavailable", extra={**extra, "error": str(exc)})
        _record(context, result, trigger, started)
        return
    if not acquired:
        result.outcome = "failed"
        result.error = (
            STOPPED
            if stop is not None and stop.is_set()
            else f"a fetch of {result.provider} held its lock for over {LOCK_WAIT_SECONDS:g} s; "
            "retention waits for the next pass"
        )
        log.warning("retention not run: lock held", extra=extra)
        _record(context, result, trigger, started)
        return
    renewal = _Renewal(lock, context.settings.MARQUEE_LEASE_SECONDS, stop)
    run_id = None
    try:
        # Recorded running while it works, so /providers shows a pass in progress.
        with transaction(context.engine) as session:
            run = RetentionRun(
                provider=result.provider, trigger=trigger, started_at=utcnow(), outcome="running"
            )
            session.add(run)
            session.flush()
            run_id = run.id
        renewal.start()
        _apply(context, result, dry_run=False, keep_going=renewal.check)
    except SQLAlchemyError as exc:  # the pass could not even be recorded
        result.outcome, result.error = "failed", f"database error: {database_error_text(exc)}"
    finally:
        renewal.stop()
        lock.release()
    if run_id is not None:
        _record(context, result, trigger, started, run_id=run_id)
    level = logging.ERROR if result.failed else logging.INFO
    log.log(
        level,
        "retention finished" if not result.failed else "retention failed",
        extra={**extra, **result.counts.as_dict(), "error": result.error},
    )


def _record(
    context: JobContext,
    result: RetentionResult,
    trigger: Trigger,
    started: datetime,
    *,
    run_id: uuid.UUID | None = None,
) -> None:
    """Close the pass's `running` record with its outcome and counts; a pass that never got its
    lock (no `run_id`) is recorded failed all the same, so /providers and the metrics show it."""
    counts = result.counts
    try:
        with transaction(context.engine) as session:
            run = session.get(RetentionRun, run_id) if run_id is not None else None
            if run is None:
                run = RetentionRun(provider=result.provider, trigger=trigger, started_at=started)
                session.add(run)
            run.finished_at, run.outcome, run.error = utcnow(), result.outcome, result.error
            run.hidden, run.archived, run.purged = counts.hidden, counts.archived, counts.purged
            run.archive_file = str(counts.archive_file) if counts.archive_file else None
    except SQLAlchemyError as exc:
        log.error(
            "retention pass not recorded: database error",
            extra={"provider": result.provider, "error": database_error_text(exc)},
        )


def _acquire(lock: RunLock, stop: threading.Event | None = None) -> bool:
    """Take the lock, waiting up to LOCK_WAIT_SECONDS; False when it stayed held or `stop` was set."""
    stopping = stop if stop is not None else threading.Event()
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while not lock.acquire():
        if time.monotonic() >= deadline or stopping.wait(LOCK_POLL_SECONDS):
            return False
    return True


class _Renewal:
    """Renews the lock every third of its lease while a pass works; `check` raises LockLost (at the
    next batch) once a renewal failed, and Stopped once `stopping` is set."""

    def __init__(
        self, lock: RunLock, lease_seconds: float, stopping: threading.Event | None = None
    ) -> None:
        self.lock, self.every = lock, lease_seconds / 3
        self._stopping = stopping
        self._stop = threading.Event()
        self._lost: str | None = None
        self._thread = threading.Thread(
            target=self._loop, name="marquee-retention-lease", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> None:
        if self._lost:
            raise LockLost(self._lost)
        if self._stopping is not None and self._stopping.is_set():
            raise Stopped(STOPPED)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                held = self.lock.renew()
            except LockUnavailable as exc:
                self._lost = f"lost the provider's lock: {exc}"
                return
            if not held:
                self._lost = (
                    "lost the provider's lock: another run may hold it; stopped between batches"
                )
                return
