"""What the run record says about each provider: its last runs, failures and stored events."""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from core.runs.records import (
    FAILURE_OUTCOMES,
    consecutive_failures,
    latest_run,
    lock_holder,
    waiting_until,
)
from core.store.models import Event, EventTombstone, FetchRun, Outcome, RetentionRun, utcnow
from core.store.search import searchable


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
    lock: dict[str, Any] | None

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
        "reason": run.reason,
        "not_before": _iso(run.not_before),
    }


def lock_summary(run: FetchRun, *, now: datetime) -> dict[str, Any]:
    """Who holds the provider's lock, since when, and until when its lease runs."""
    expires = run.lease_expires_at
    return {
        "run_id": str(run.id),
        "holder": run.holder,
        "trigger": run.trigger,
        "since": _iso(run.started_at),
        "heartbeat_at": _iso(run.heartbeat_at),
        "lease_expires_at": _iso(expires),
        # A lapsed lease: its process died or froze; the next run to take the lock closes it.
        "lease_expired": expires is None or expires < now,
    }


def running_runs(*, session: Session) -> list[FetchRun]:
    return list(session.exec(select(FetchRun).where(FetchRun.outcome == Outcome.RUNNING)))


class EventCounts(NamedTuple):
    stored: int
    searchable: int  # ever on sale and not hidden: what /search serves
    hidden: int  # hidden by retention


def event_counts(*, session: Session) -> dict[str, EventCounts]:
    """Per provider, its stored events counted in one scan of the table."""
    query = select(
        Event.provider,
        sa.func.count(),
        sa.func.count().filter(searchable()),
        sa.func.count().filter(col(Event.hidden_at).is_not(None)),
    ).group_by(Event.provider)
    return {provider: EventCounts(*counts) for provider, *counts in session.exec(query)}


def provider_status(
    *, session: Session, provider: str, counts: dict[str, EventCounts] | None = None
) -> ProviderRunStatus:
    counts = event_counts(session=session) if counts is None else counts
    last = latest_run(session, provider)
    success = latest_run(session, provider, Outcome.SUCCESS)
    failure = latest_run(session, provider, *FAILURE_OUTCOMES)
    stored, searchable, _ = counts.get(provider, EventCounts(0, 0, 0))
    holder = lock_holder(session=session, provider=provider)
    return ProviderRunStatus(
        last_run=run_summary(last) if last else None,
        last_success_at=_iso(success.finished_at or success.started_at) if success else None,
        last_failure_at=_iso(failure.finished_at or failure.started_at) if failure else None,
        last_failure_error=failure.error if failure else None,
        consecutive_failures=consecutive_failures(session=session, provider=provider),
        events_stored=stored,
        events_searchable=searchable,
        not_before=_iso(waiting_until(session=session, provider=provider)),
        lock=lock_summary(holder, now=utcnow()) if holder else None,
    )


# --- retention -----------------------------------------------------------------------------------

RETENTION_STATES = ("active", "hidden", "archived")


def retention_counts(
    *, session: Session, events: dict[str, EventCounts]
) -> dict[str, dict[str, int]]:
    """Per provider: events stored and served (active), stored and hidden, archived (tombstones);
    `events` is what `event_counts` read."""
    counts = {
        provider: {"active": tally.stored - tally.hidden, "hidden": tally.hidden, "archived": 0}
        for provider, tally in events.items()
    }
    archived = select(EventTombstone.provider, sa.func.count()).group_by(EventTombstone.provider)
    for provider, tombstones in session.exec(archived):
        counts.setdefault(provider, {"active": 0, "hidden": 0, "archived": 0})["archived"] = (
            tombstones
        )
    return counts


def last_retention_run(*, session: Session, provider: str) -> dict[str, Any] | None:
    run = session.exec(
        select(RetentionRun)
        .where(RetentionRun.provider == provider)
        .order_by(col(RetentionRun.started_at).desc())
        .limit(1)
    ).first()
    if run is None:
        return None
    return {
        "id": str(run.id),
        "trigger": run.trigger,
        "outcome": run.outcome,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "hidden": run.hidden,
        "archived": run.archived,
        "purged": run.purged,
        "archive_file": run.archive_file,
        "error": run.error,
    }


def retention_totals(*, session: Session) -> list[tuple[str, str, int, int, int, int]]:
    """Per provider and outcome: (provider, outcome, runs, hidden, archived, purged), all time."""
    query = select(
        RetentionRun.provider,
        RetentionRun.outcome,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(RetentionRun.hidden), 0),
        sa.func.coalesce(sa.func.sum(RetentionRun.archived), 0),
        sa.func.coalesce(sa.func.sum(RetentionRun.purged), 0),
    ).group_by(RetentionRun.provider, RetentionRun.outcome)
    return [tuple(row) for row in session.exec(query)]  # type: ignore[misc]
