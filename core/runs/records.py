"""The record of every fetch attempt: opened when a run starts, closed when it ends.

Data functions take `*, session`; the caller owns the transaction.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.logs import redact
from core.store.models import FetchRun, Outcome, Reason, Trigger, utcnow

# Each of these is one failed attempt; a success resets the count.
FAILURE_OUTCOMES = (Outcome.FAILED, Outcome.RETRYING)
MAX_ERROR_CHARS = 2000
ABANDONED = (
    "abandoned: its lease lapsed before it finished (the process running it stopped or froze)"
)
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
    *,
    session: Session,
    provider: str,
    trigger: Trigger,
    attempt: int,
    holder: str,
    lease_seconds: float,
) -> FetchRun:
    """Record a run that holds the provider's lock, with its lease.

    Holding the lock means no other run of the provider is alive and holding it: every other
    `running` row was left by a process that died, froze past its lease or lost its lock, so it is
    closed here as a failure (finished_at stays empty: nobody saw it end).
    """
    now = utcnow()
    session.execute(
        sa.update(FetchRun)
        .where(col(FetchRun.provider) == provider, col(FetchRun.outcome) == Outcome.RUNNING)
        .values(outcome=Outcome.FAILED, reason=Reason.ABANDONED, error=ABANDONED)
        .execution_options(synchronize_session=False)
    )
    run = FetchRun(
        provider=provider,
        trigger=trigger,
        attempt=attempt,
        started_at=now,
        outcome=Outcome.RUNNING,
        holder=holder[:255],
        heartbeat_at=now,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
    )
    session.add(run)
    session.flush()
    return run


def renew_lease(*, session: Session, run_id: uuid.UUID, lease_seconds: float) -> bool:
    """Extend a running run's lease; False when its row was closed (another run took over)."""
    now = utcnow()
    renewed = session.execute(
        sa.update(FetchRun)
        .where(col(FetchRun.id) == run_id, col(FetchRun.outcome) == Outcome.RUNNING)
        .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return bool(renewed.rowcount)


def interrupt_runs(*, session: Session, run_ids: list[uuid.UUID], error: str) -> int:
    """Close runs cut short by a signal or a scheduler stop as failed, seen ending now."""
    if not run_ids:
        return 0
    closed = session.execute(
        sa.update(FetchRun)
        .where(col(FetchRun.id).in_(run_ids), col(FetchRun.outcome) == Outcome.RUNNING)
        .values(
            outcome=Outcome.FAILED,
            reason=Reason.INTERRUPTED,
            error=error[:MAX_ERROR_CHARS],
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return closed.rowcount


def lock_holder(*, session: Session, provider: str) -> FetchRun | None:
    """The run recorded as holding the provider's lock: its latest `running` row."""
    return latest_run(session, provider, Outcome.RUNNING)


def lock_held_text(holder: FetchRun | None) -> str:
    if holder is None:
        return (
            f"{LOCK_HELD} (no fetch run recorded: a run starting or stopping, or a retention pass)"
        )
    lease = holder.lease_expires_at.isoformat() if holder.lease_expires_at else "unknown"
    return (
        f"{LOCK_HELD} (run {holder.id} on {holder.holder or 'unknown host'}, "
        f"since {holder.started_at.isoformat()}, lease until {lease})"
    )


def finish_run(
    *,
    session: Session,
    run_id: uuid.UUID,
    outcome: Outcome,
    report: RunCounts | None = None,
    error: str | None = None,
    not_before: datetime | None = None,
    reason: Reason | None = None,
) -> FetchRun:
    """Record the run's outcome, unless it was already closed as abandoned: return the row as kept.

    A closed row was counted as a failure; rewriting it would take that failure back, which
    metrics counters must never do. The caller can tell: such a row has no `finished_at`.
    """
    values: dict[str, Any] = {
        "outcome": outcome,
        "not_before": not_before,
        "finished_at": utcnow(),
        "reason": reason,
    }
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


def record_not_run(
    *,
    session: Session,
    provider: str,
    trigger: Trigger,
    attempt: int,
    reason: Reason,
    error: str,
    not_before: datetime | None = None,
    outcome: Outcome = Outcome.SKIPPED,
) -> FetchRun:
    """Record a run that ended before it called its provider: skipped, or failed to take the lock."""
    now = utcnow()
    run = FetchRun(
        provider=provider,
        trigger=trigger,
        attempt=attempt,
        started_at=now,
        finished_at=now,
        outcome=outcome,
        reason=reason,
        error=redact(error)[:MAX_ERROR_CHARS],
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
    query = select(FetchRun).where(
        FetchRun.provider == provider,
        col(FetchRun.outcome).in_(CALLED_OUTCOMES),
        # Runs closed by us (abandoned, interrupted, no lock) never heard the provider's answer.
        col(FetchRun.reason).is_(None),
    )
    last = session.exec(query.order_by(col(FetchRun.started_at).desc()).limit(1)).first()
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
