"""How a fetch job ends: its result, the record that closes its run, and the line that says so."""

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from core.ingest.pipeline import FetchReport
from core.runs import history, records
from core.store.db import transaction
from core.store.models import Outcome, Reason

if TYPE_CHECKING:
    from core.scheduling.context import JobContext

log = logging.getLogger("marquee.jobs")
# How much of an error a log line carries.
EXCERPT_CHARS = 300


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
    reason: Reason | None = None
    # The lock holder a skipped run looks in on again: {"run_id", "heartbeat_at"}.
    watch: dict[str, str | None] | None = None

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
            "reason": self.reason,
        }


def excerpt(text: str) -> str:
    """At most EXCERPT_CHARS of an error for a log line: never a feed's or a batch's worth."""
    return text if len(text) <= EXCERPT_CHARS else f"{text[:EXCERPT_CHARS]}… ({len(text)} chars)"


def database_error_text(exc: SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return excerpt(f"{type(exc).__name__}: {lines[0] if lines else ''}")


def finish(context: "JobContext", result: JobResult, extra: dict[str, Any]) -> None:
    assert result.run_id is not None
    with transaction(context.engine) as session:
        recorded = records.finish_run(
            session=session,
            run_id=uuid.UUID(result.run_id),
            outcome=result.outcome,
            report=result.report,
            error=result.error,
            not_before=result.not_before,
            reason=result.reason,
        )
        # finish_run leaves a row another run (or a shutdown) closed first as it was.
        closed_before = recorded.outcome != result.outcome or recorded.reason != result.reason
        failures = records.consecutive_failures(session=session, provider=result.provider)
        history.prune(
            session=session,
            provider=result.provider,
            keep_days=context.settings.MARQUEE_RUN_HISTORY_DAYS,
        )
    if closed_before:
        log.warning(
            "run finished after its record was closed (abandoned or interrupted); "
            "its record stays failed",
            extra={**extra, "outcome": result.outcome, "error": excerpt(result.error or "")},
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
                "error": excerpt(result.error or ""),
            },
        )
    else:
        log.error(
            "provider failing",
            extra={
                **extra,
                "consecutive_failures": failures,
                "error": excerpt(result.error or ""),
            },
        )
