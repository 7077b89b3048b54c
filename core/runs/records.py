"""The record of every fetch attempt: opened when a run starts, closed when it ends.

Data functions take `*, session`; the caller owns the transaction.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.logs import redact
from core.store.models import FetchRun, Outcome, Trigger, utcnow

# Each of these is one failed attempt; a success resets the count.
FAILURE_OUTCOMES = (Outcome.FAILED, Outcome.RETRYING)
MAX_ERROR_CHARS = 2000
ABANDONED = "abandoned: the process running it stopped before it finished"
LOCK_HELD = "another run of this provider holds the lock"
# Outcomes of runs that called the provider: the last of them says whether it asked us to wait.
CALLED_OUTCOMES = (Outcome.SUCCESS, Outcome.FAILED, Outcome.RETRYING)


class RunCounts(Protocol):
    """What a finished fetch counted (the ingest's report has these)."""

    inserted: int
    updated: int
    unchanged: int
    skipped: int
    bytes: int


def start_run(
    *, session: Session, provider: str, trigger: Trigger, attempt: int, lock_timeout_seconds: float
) -> FetchRun:
    """Record a run that holds the provider's lock.

    A `running` row older than the lock's lifetime was left by a killed process (a live run
    cannot hold the lock that long), so it is closed here as a failure (finished_at stays empty:
    nobody saw it end). Younger ones may be alive: another process under per-process locks.
    """
    now = utcnow()
    session.execute(
        sa.update(FetchRun)
        .where(
            col(FetchRun.provider) == provider,
            col(FetchRun.outcome) == Outcome.RUNNING,
            col(FetchRun.started_at) < now - timedelta(seconds=lock_timeout_seconds),
        )
        .values(outcome=Outcome.FAILED, error=ABANDONED)
    )
    run = FetchRun(
        provider=provider, trigger=trigger, attempt=attempt, started_at=now, outcome=Outcome.RUNNING
    )
    session.add(run)
    session.flush()
    return run


def finish_run(
    *,
    session: Session,
    run_id: uuid.UUID,
    outcome: Outcome,
    report: RunCounts | None = None,
    error: str | None = None,
    not_before: datetime | None = None,
) -> FetchRun:
    """Record the run's outcome, unless it was already closed as abandoned: return the row as kept.

    A closed row was counted as a failure; rewriting it would take that failure back, which
    metrics counters must never do. The caller can tell: such a row has no `finished_at`.
    """
    values: dict[str, Any] = {"outcome": outcome, "not_before": not_before, "finished_at": utcnow()}
    if report is not None:
        values.update(
            inserted=report.inserted,
            updated=report.updated,
            unchanged=report.unchanged,
            skipped=report.skipped,
            bytes=report.bytes,
        )
    # Errors are shown to operators over HTTP: no credentials, no megabyte messages.
    values["error"] = redact(error)[:MAX_ERROR_CHARS] if error else None
    # Conditional in one statement, so a run closing this row at the same moment cannot be undone.
    session.execute(
        sa.update(FetchRun)
        .where(col(FetchRun.id) == run_id, col(FetchRun.outcome) == Outcome.RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return session.get_one(FetchRun, run_id, populate_existing=True)


def record_skipped(
    *,
    session: Session,
    provider: str,
    trigger: Trigger,
    attempt: int,
    reason: str = LOCK_HELD,
    not_before: datetime | None = None,
) -> FetchRun:
    now = utcnow()
    run = FetchRun(
        provider=provider,
        trigger=trigger,
        attempt=attempt,
        started_at=now,
        finished_at=now,
        outcome=Outcome.SKIPPED,
        error=reason,
        not_before=not_before,
    )
    session.add(run)
    session.flush()
    return run


def latest_run(session: Session, provider: str, *outcomes: str) -> FetchRun | None:
    query = select(FetchRun).where(FetchRun.provider == provider)
    if outcomes:
        query = query.where(col(FetchRun.outcome).in_(outcomes))
    return session.exec(query.order_by(col(FetchRun.started_at).desc()).limit(1)).first()


def waiting_until(
    *, session: Session, provider: str, now: datetime | None = None
) -> datetime | None:
    """The instant the provider asked us not to call it before, if that is still ahead.

    Only the last run that called the provider counts: a later answer lifts an earlier wait.
    """
    last = latest_run(session, provider, *CALLED_OUTCOMES)
    if last is None or last.not_before is None:
        return None
    return last.not_before if last.not_before > (now or utcnow()) else None


def consecutive_failures(*, session: Session, provider: str) -> int:
    """Failed attempts since the last success (skipped runs neither count nor reset)."""
    query = select(sa.func.count()).where(
        FetchRun.provider == provider, col(FetchRun.outcome).in_(FAILURE_OUTCOMES)
    )
    success = latest_run(session, provider, Outcome.SUCCESS)
    if success is not None:
        query = query.where(FetchRun.started_at > success.started_at)
    return session.exec(query).one()
