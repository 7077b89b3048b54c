"""The one fetch job every trigger calls: `marquee fetch`, the Celery task, the embedded scheduler.

It takes the provider's run lock, honours a Retry-After the provider gave earlier, records the
attempt, holds a lease while `core.ingest.pipeline.fetch_provider` runs, and decides whether a
failure is worth retrying. Triggers only differ in how they wait for a retry.
"""

import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from core.errors import MarqueeError, TransientError
from core.ingest.pipeline import fetch_provider
from core.runs import records
from core.scheduling import watching
from core.scheduling.context import JobContext
from core.scheduling.lease import Interrupted, Lease, LeaseLost, holder_name
from core.scheduling.locks import LockUnavailable, RunLock
from core.scheduling.outcome import JobResult, database_error_text, excerpt, finish
from core.scheduling.retry import honoured_wait, not_before, retry_span_seconds
from core.store.db import transaction
from core.store.models import Outcome, Reason, Trigger

log = logging.getLogger("marquee.jobs")


def run_fetch(
    context: JobContext,
    provider: str,
    *,
    trigger: Trigger,
    attempt: int = 1,
    first_started: float | None = None,
    retry: bool = True,
    watch: dict[str, str | None] | None = None,
) -> JobResult:
    """Fetch `provider` once, unless another run holds its lock; never raises for a failed fetch.

    `first_started` (epoch seconds) is when attempt 1 began, so retries stay within the span.
    `watch` is the lock holder an earlier skipped attempt saw: this attempt looks in on it again.
    """
    first_started = time.time() if first_started is None else first_started
    result = JobResult(provider, Outcome.FAILED, attempt, first_started=first_started)
    if watch is not None and watching.holder_carries_on(context, result, watch):
        return result
    lock = context.locks.for_provider(provider)
    try:
        acquired = lock.acquire()
    except LockUnavailable as exc:
        _record_not_run(
            context,
            result,
            trigger,
            outcome=Outcome.FAILED,
            reason=Reason.LOCK_UNAVAILABLE,
            error=str(exc),
        )
        if trigger != Trigger.CLI:  # `marquee fetch` says so itself, in one line
            log.error(
                "run failed: its lock cannot be reached", extra={**_ids(result), "error": str(exc)}
            )
        return result
    if not acquired:
        watching.skip_lock_held(
            context,
            result,
            trigger,
            lock,
            record=watch is None,
            may_watch=retry and trigger != Trigger.CLI,
        )
        return result
    try:
        # Checked under the lock: a run that got a 429 and released it just now is seen here.
        if trigger == Trigger.CLI or not _skip_while_asked_to_wait(context, result, trigger):
            _run_locked(context, lock, result, trigger=trigger, retry=retry)
    finally:
        lock.release()
    return result


def _ids(result: JobResult) -> dict[str, Any]:
    return {"provider": result.provider, "run_id": result.run_id}


def _record_not_run(
    context: JobContext,
    result: JobResult,
    trigger: Trigger,
    *,
    reason: Reason,
    error: str,
    outcome: Outcome = Outcome.SKIPPED,
    not_before: datetime | None = None,
) -> None:
    with transaction(context.engine) as session:
        run = records.record_not_run(
            session=session,
            provider=result.provider,
            trigger=trigger,
            attempt=result.attempt,
            reason=reason,
            error=error,
            not_before=not_before,
            outcome=outcome,
        )
        result.run_id, result.outcome, result.error = str(run.id), outcome, run.error
    result.reason, result.not_before = reason, not_before


def _skip_while_asked_to_wait(context: JobContext, result: JobResult, trigger: Trigger) -> bool:
    with transaction(context.engine) as session:
        until = records.waiting_until(
            session=session, provider=result.provider, now=context.clock()
        )
    if until is None:
        return False
    reason = f"provider asked us to wait until {until.isoformat()} (Retry-After)"
    _record_not_run(
        context, result, trigger, reason=Reason.RETRY_AFTER, error=reason, not_before=until
    )
    log.info(
        "run skipped: provider asked us to wait (Retry-After)",
        extra={**_ids(result), "not_before": str(until)},
    )
    return True


def _run_locked(
    context: JobContext, lock: RunLock, result: JobResult, *, trigger: Trigger, retry: bool
) -> None:
    settings = context.settings
    with transaction(context.engine) as session:
        run = records.start_run(
            session=session,
            provider=result.provider,
            trigger=trigger,
            attempt=result.attempt,
            holder=holder_name(),
            lease_seconds=settings.MARQUEE_LEASE_SECONDS,
        )
        run_id = run.id
        result.run_id = str(run_id)
    extra = _ids(result)
    log.info("run started", extra={**extra, "trigger": trigger, "attempt": result.attempt})
    lease = Lease(
        run_id=run_id,
        provider=result.provider,
        lock=lock,
        engine=context.engine,
        lease_seconds=settings.MARQUEE_LEASE_SECONDS,
        max_hold_seconds=settings.MARQUEE_LOCK_TIMEOUT_SECONDS,
    ).start()
    context.active.add(lease)
    try:
        _fetch(context, lease, result, retry=retry)
    except KeyboardInterrupt as exc:
        # Ctrl-C, or SIGTERM turned into Interrupted: close the run as such, then stop.
        name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
        result.error, result.reason = f"interrupted: {name} during the fetch", Reason.INTERRUPTED
        finish(context, result, extra)
        raise
    finally:
        lease.stop()
        context.active.discard(lease)
    finish(context, result, extra)


def _fetch(context: JobContext, lease: Lease, result: JobResult, *, retry: bool) -> None:
    extra = _ids(result)
    try:
        entry = context.registry.configured(result.provider)
        report = fetch_provider(
            entry,
            engine=lease.fenced(context.engine),
            batch_size=context.settings.MARQUEE_BATCH_SIZE,
        )
    except LeaseLost as exc:
        result.error, result.reason = str(exc), Reason.LEASE_LOST
    except TransientError as exc:
        result.error = str(exc)
        wait = honoured_wait(exc.retry_after, interval_seconds=entry.settings.interval_seconds)
        if wait is not None:
            if wait != exc.retry_after:
                log.warning(
                    "Retry-After longer than we wait; waiting the cap",
                    extra={**extra, "retry_after": exc.retry_after, "wait_seconds": wait},
                )
            # From now, before the run is recorded, so a retry waiting Retry-After lands after it.
            result.not_before = not_before(context.clock(), wait)
        if retry:
            result.retry_in = _retry_delay(
                context, result, interval_seconds=entry.settings.interval_seconds, wait=wait
            )
        result.outcome = Outcome.FAILED if result.retry_in is None else Outcome.RETRYING
    except MarqueeError as exc:
        result.error = str(exc)
    except SQLAlchemyError as exc:
        # Its text carries the statement and the batch's parameters, i.e. feed content.
        result.error = f"database error: {database_error_text(exc)}"
    except Exception as exc:
        # A bug: record what we can, keep the trigger alive.
        log.exception("run crashed", extra=extra)
        result.error = f"unexpected {type(exc).__name__}: {excerpt(str(exc))}"
    else:
        result.report, result.outcome = report, Outcome.SUCCESS


def _retry_delay(
    context: JobContext, result: JobResult, *, interval_seconds: float, wait: float | None
) -> float | None:
    return context.retry_policy.delay(
        attempt=result.attempt,
        elapsed_seconds=time.time() - result.first_started,
        span_seconds=retry_span_seconds(interval_seconds),
        retry_after=wait,
    )
