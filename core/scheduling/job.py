"""The one fetch job every trigger calls: `marquee fetch`, the Celery task, the embedded scheduler.

It takes the provider's run lock, honours a Retry-After the provider gave earlier, records the
attempt, calls `core.ingest.pipeline.fetch_provider` and decides whether a failure is worth
retrying. Triggers only differ in how they wait for a retry.
"""

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import MarqueeError, TransientError
from core.ingest.pipeline import FetchReport, fetch_provider
from core.runs import history, records
from core.scheduling.context import JobContext
from core.scheduling.retry import honoured_wait, not_before, retry_span_seconds
from core.store.db import transaction
from core.store.models import Outcome, Trigger

log = logging.getLogger("marquee.jobs")


@dataclass(slots=True)
class JobResult:
    provider: str
    outcome: Outcome
    attempt: int
    run_id: str | None = None
    report: FetchReport | None = None
    error: str | None = None
    retry_in: float | None = None
    not_before: datetime | None = None
    first_started: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "outcome": self.outcome,
            "attempt": self.attempt,
            "run_id": self.run_id,
            "report": self.report.as_dict() if self.report else None,
            "error": self.error,
            "retry_in": self.retry_in,
            "not_before": self.not_before.isoformat() if self.not_before else None,
        }


def run_fetch(
    context: JobContext,
    provider: str,
    *,
    trigger: Trigger,
    attempt: int = 1,
    first_started: float | None = None,
    retry: bool = True,
) -> JobResult:
    """Fetch `provider` once, unless another run holds its lock; never raises for a failed fetch.

    `first_started` (epoch seconds) is when attempt 1 began, so retries stay within the span.
    """
    first_started = time.time() if first_started is None else first_started
    result = JobResult(provider, Outcome.FAILED, attempt, first_started=first_started)
    lock = context.locks.for_provider(provider)
    if not lock.acquire():
        _skip(context, result, trigger, reason=records.LOCK_HELD)
        log.info(
            "run skipped: another run holds the lock",
            extra={"provider": provider, "run_id": result.run_id},
        )
        return result
    try:
        # Checked under the lock: a run that got a 429 and released it just now is seen here.
        if trigger == Trigger.CLI or not _skip_while_asked_to_wait(context, result, trigger):
            _run_locked(context, result, trigger=trigger, retry=retry)
    finally:
        lock.release()
    return result


def _skip(
    context: JobContext,
    result: JobResult,
    trigger: Trigger,
    *,
    reason: str,
    not_before: datetime | None = None,
) -> None:
    with transaction(context.engine) as session:
        run = records.record_skipped(
            session=session,
            provider=result.provider,
            trigger=trigger,
            attempt=result.attempt,
            reason=reason,
            not_before=not_before,
        )
        result.run_id, result.outcome, result.error = str(run.id), Outcome.SKIPPED, run.error
    result.not_before = not_before


def _skip_while_asked_to_wait(context: JobContext, result: JobResult, trigger: Trigger) -> bool:
    with transaction(context.engine) as session:
        until = records.waiting_until(
            session=session, provider=result.provider, now=context.clock()
        )
    if until is None:
        return False
    reason = f"provider asked us to wait until {until.isoformat()} (Retry-After)"
    _skip(context, result, trigger, reason=reason, not_before=until)
    log.info(
        "run skipped: provider asked us to wait (Retry-After)",
        extra={"provider": result.provider, "run_id": result.run_id, "not_before": str(until)},
    )
    return True


def _run_locked(context: JobContext, result: JobResult, *, trigger: Trigger, retry: bool) -> None:
    provider = result.provider
    with transaction(context.engine) as session:
        run = records.start_run(
            session=session,
            provider=provider,
            trigger=trigger,
            attempt=result.attempt,
            lock_timeout_seconds=context.settings.MARQUEE_LOCK_TIMEOUT_SECONDS,
        )
        result.run_id = str(run.id)
    extra = {"provider": provider, "run_id": result.run_id}
    log.info("run started", extra={**extra, "trigger": trigger, "attempt": result.attempt})
    try:
        entry = context.registry.configured(provider)
        report = fetch_provider(
            entry, engine=context.engine, batch_size=context.settings.MARQUEE_BATCH_SIZE
        )
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
    except Exception as exc:
        # A bug or an unreachable database: record what we can, keep the trigger alive.
        log.exception("run crashed", extra=extra)
        result.error = f"unexpected {type(exc).__name__}: {exc}"
    else:
        result.report, result.outcome = report, Outcome.SUCCESS
    _finish(context, result, extra)


def _retry_delay(
    context: JobContext, result: JobResult, *, interval_seconds: float, wait: float | None
) -> float | None:
    return context.retry_policy.delay(
        attempt=result.attempt,
        elapsed_seconds=time.time() - result.first_started,
        span_seconds=retry_span_seconds(interval_seconds),
        retry_after=wait,
    )


def _finish(context: JobContext, result: JobResult, extra: dict[str, Any]) -> None:
    assert result.run_id is not None
    with transaction(context.engine) as session:
        recorded = records.finish_run(
            session=session,
            run_id=uuid.UUID(result.run_id),
            outcome=result.outcome,
            report=result.report,
            error=result.error,
            not_before=result.not_before,
        )
        # An abandoned row has no end: finish_run left it as another run closed it.
        closed_before = recorded.finished_at is None
        failures = records.consecutive_failures(session=session, provider=result.provider)
        history.prune(
            session=session,
            provider=result.provider,
            keep_days=context.settings.MARQUEE_RUN_HISTORY_DAYS,
        )
    if closed_before:
        log.warning(
            "run finished after another run closed it as abandoned; its record stays failed",
            extra={**extra, "outcome": result.outcome, "error": result.error},
        )
    if result.report is not None:
        report = result.report
        log.info(
            "run finished",
            extra={
                **extra,
                "outcome": result.outcome,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": report.skipped,
                "bytes": report.bytes,
                "seconds": report.seconds,
            },
        )
    elif result.retry_in is not None:
        log.warning(
            "retry scheduled",
            extra={
                **extra,
                "attempt": result.attempt,
                "delay_seconds": result.retry_in,
                "error": result.error,
            },
        )
    else:
        log.error(
            "provider failing",
            extra={**extra, "consecutive_failures": failures, "error": result.error},
        )
