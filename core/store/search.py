"""Reading events back: the search the API serves, and the EventSummary each row becomes."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from core.store.models import Event

TABLE = Event.__table__  # type: ignore[attr-defined]
SUMMARY_COLUMNS = (
    TABLE.c.id,
    TABLE.c.title,
    TABLE.c.start_date,
    TABLE.c.start_time,
    TABLE.c.end_date,
    TABLE.c.end_time,
    TABLE.c.min_price,
    TABLE.c.max_price,
)


def event_summary(row: sa.Row[Any]) -> dict[str, Any]:
    """The contract's EventSummary: exactly eight keys, local dates and times as the feed gave them."""
    return {
        "id": str(row.id),
        "title": row.title,
        "start_date": row.start_date.isoformat(),
        "start_time": row.start_time.isoformat(timespec="seconds") if row.start_time else None,
        "end_date": row.end_date.isoformat() if row.end_date else None,
        "end_time": row.end_time.isoformat(timespec="seconds") if row.end_time else None,
        "min_price": row.min_price,
        "max_price": row.max_price,
    }


def search_query(
    *,
    dialect: str,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    providers: Sequence[str] | None = None,
) -> sa.Select[Any]:
    """The statement behind `search_events`, shaped so the partial index on (starts_at, id) serves
    both the range and the order."""
    query = sa.select(*SUMMARY_COLUMNS).where(TABLE.c.ever_on_sale)
    if starts_at is not None:
        query = query.where(TABLE.c.starts_at >= starts_at)
    if ends_at is not None:
        # Implied (no event ends before it starts), and it bounds the index range on starts_at.
        query = query.where(TABLE.c.ends_at <= ends_at, TABLE.c.starts_at <= ends_at)
    if providers is not None:
        in_providers = TABLE.c.provider.in_(providers)
        if dialect == "sqlite":
            # Most stored events belong to the providers asked for. Saying so keeps SQLite on the
            # starts_at index rather than the (provider, external_id) one followed by a sort.
            in_providers = sa.func.likely(in_providers)
        query = query.where(in_providers)
    return query.order_by(TABLE.c.starts_at, TABLE.c.id)


def search_events(
    *,
    session: Session,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    providers: Sequence[str] | None = None,
) -> list[sa.Row[Any]]:
    """Events ever on sale that start at or after `starts_at` and end at or before `ends_at`,
    ordered by start, then id."""
    query = search_query(
        dialect=session.get_bind().dialect.name,
        starts_at=starts_at,
        ends_at=ends_at,
        providers=providers,
    )
    return list(session.execute(query))


def get_event(
    *, session: Session, event_id: uuid.UUID, providers: Sequence[str] | None = None
) -> sa.Row[Any] | None:
    """One searchable event by its public id (of one of `providers`, when given)."""
    query = sa.select(*SUMMARY_COLUMNS).where(TABLE.c.id == event_id, TABLE.c.ever_on_sale)
    if providers is not None:
        query = query.where(TABLE.c.provider.in_(providers))
    return session.execute(query).first()
