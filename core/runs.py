"""The record of every fetch attempt, and what it says about each provider.

Data functions take `*, session`; the caller owns the transaction.
"""

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.ingest import FetchReport
from core.logs import redact
from core.models import Event, FetchRun, utcnow

RUNNING = "running"
SUCCESS = "success"
FAILED = "failed"
RETRYING = "retrying"
SKIPPED = "skipped"
# Each of these is one failed attempt; a success resets the count.
FAILURE_OUTCOMES = (FAILED, RETRYING)
MAX_ERROR_CHARS = 2000
ABANDONED = "abandoned: the process running it stopped before it finished"
LOCK_HELD = "another run of this provider holds the lock"
# Outcomes of runs that called the provider: the last of them says whether it asked us to wait.
CALLED_OUTCOMES = (SUCCESS, FAILED, RETRYING)


def start_run(
    *, session: Session, provider: str, trigger: str, attempt: int, lock_timeout_seconds: float
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
            col(FetchRun.outcome) == RUNNING,
            col(FetchRun.started_at) < now - timedelta(seconds=lock_timeout_seconds),
        )
        .values(outcome=FAILED, error=ABANDONED)
    )
    run = FetchRun(
        provider=provider, trigger=trigger, attempt=attempt, started_at=now, outcome=RUNNING
    )
    session.add(run)
    session.flush()
    return run


def finish_run(
    *,
    session: Session,
    run_id: uuid.UUID,
    outcome: str,
    report: FetchReport | None = None,
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
        .where(col(FetchRun.id) == run_id, col(FetchRun.outcome) == RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return session.get_one(FetchRun, run_id, populate_existing=True)


def record_skipped(
    *,
    session: Session,
    provider: str,
    trigger: str,
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
        outcome=SKIPPED,
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
    success = latest_run(session, provider, SUCCESS)
    if success is not None:
        query = query.where(FetchRun.started_at > success.started_at)
    return session.exec(query).one()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(slots=True)
class ProviderRunStatus:
    last_run: dict[str, Any] | None
    last_success_at: str | None
    last_failure_at: str | None
    last_failure_error: str | None
    consecutive_failures: int
    events_stored: int
    events_searchable: int
    not_before: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_summary(run: FetchRun) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "trigger": run.trigger,
        "attempt": run.attempt,
        "outcome": run.outcome,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "inserted": run.inserted,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "skipped": run.skipped,
        "bytes": run.bytes,
        "error": run.error,
        "not_before": _iso(run.not_before),
    }


def event_counts(*, session: Session) -> dict[str, tuple[int, int]]:
    """Per provider: (events stored, events searchable)."""
    query = select(
        Event.provider, sa.func.count(), sa.func.count().filter(col(Event.ever_on_sale))
    ).group_by(Event.provider)
    return {provider: (stored, searchable) for provider, stored, searchable in session.exec(query)}


def provider_status(
    *, session: Session, provider: str, counts: dict[str, tuple[int, int]] | None = None
) -> ProviderRunStatus:
    counts = event_counts(session=session) if counts is None else counts
    last = latest_run(session, provider)
    success = latest_run(session, provider, SUCCESS)
    failure = latest_run(session, provider, *FAILURE_OUTCOMES)
    stored, searchable = counts.get(provider, (0, 0))
    return ProviderRunStatus(
        last_run=run_summary(last) if last else None,
        last_success_at=_iso(success.finished_at or success.started_at) if success else None,
        last_failure_at=_iso(failure.finished_at or failure.started_at) if failure else None,
        last_failure_error=failure.error if failure else None,
        consecutive_failures=consecutive_failures(session=session, provider=provider),
        events_stored=stored,
        events_searchable=searchable,
        not_before=_iso(waiting_until(session=session, provider=provider)),
    )
