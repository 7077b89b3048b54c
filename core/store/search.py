"""Reading events back: the search the API serves, and the EventSummary each row becomes."""

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
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


# --- the fast renderer: rows of `fast_columns` straight to the bytes FastAPI gave for `ok(...)` ---
# FastAPI serialised the routes' dict answers with pydantic-core's JSON encoder; orjson writes
# every string and float (NaN and infinities as null included) exactly as it does.
PAGE_HEAD = b'{"data":{"events":['
# Times as `isoformat(timespec="seconds")`: microseconds left out, not rounded.
OPTIONS = orjson.OPT_OMIT_MICROSECONDS
PAGE_TAIL = b']},"error":null}'


def fast_columns(dialect: str) -> list[sa.ColumnElement[Any]]:
    """The EventSummary fields as the fast renderer takes them, then the row's (starts_at, id) as
    the database gives them, to continue after it. PostgreSQL's own types load fastest (in C),
    and orjson writes UUIDs, dates and times exactly as `event_summary` does; SQLite stores a UUID
    as 32 hex digits, dates as text and times with microseconds, so it formats them as text."""
    c = TABLE.c
    if dialect == "postgresql":
        return [*SUMMARY_COLUMNS, c.starts_at, c.id]
    hex_id = sa.type_coerce(c.id, sa.String)
    dashed = sa.func.substr(hex_id, 1, 8)
    for start, length in ((9, 4), (13, 4), (17, 4), (21, 12)):
        dashed = dashed.concat("-").concat(sa.func.substr(hex_id, start, length))
    return [
        dashed,
        c.title,
        sa.type_coerce(c.start_date, sa.String),
        sa.func.substr(sa.type_coerce(c.start_time, sa.String), 1, 8),
        sa.type_coerce(c.end_date, sa.String),
        sa.func.substr(sa.type_coerce(c.end_time, sa.String), 1, 8),
        c.min_price,
        c.max_price,
        sa.type_coerce(c.starts_at, sa.String),
        hex_id,
    ]


def summaries(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """EventSummary dicts of rows of `fast_columns`, read by position."""
    return [
        {
            "id": id_,
            "title": title,
            "start_date": start_date,
            "start_time": start_time,
            "end_date": end_date,
            "end_time": end_time,
            "min_price": low,
            "max_price": high,
        }
        for id_, title, start_date, start_time, end_date, end_time, low, high, _, _ in rows
    ]


def render_page(rows: Iterable[Sequence[Any]]) -> bytes:
    """The whole /search answer: byte for byte what FastAPI made of
    `ok({"events": [event_summary(row)…]})`."""
    return orjson.dumps({"data": {"events": summaries(rows)}, "error": None}, option=OPTIONS)


def render_events(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as the comma-separated events of a streamed answer (between PAGE_HEAD and PAGE_TAIL)."""
    return orjson.dumps(summaries(rows), option=OPTIONS)[1:-1]


def render_event(row: Sequence[Any]) -> bytes:
    """The /events/{id} answer."""
    return orjson.dumps({"data": {"event": summaries([row])[0]}, "error": None}, option=OPTIONS)


def search_query(
    *,
    dialect: str,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    providers: Sequence[str] | None = None,
) -> sa.Select[Any]:
    """The statement behind `search_events`, shaped so the partial index on (starts_at, id) serves
    both the range and the order."""
    query = in_window(
        sa.select(*SUMMARY_COLUMNS),
        dialect=dialect,
        starts_at=starts_at,
        ends_at=ends_at,
        providers=providers,
    )
    return query.order_by(TABLE.c.starts_at, TABLE.c.id)


def searchable() -> sa.ColumnElement[bool]:
    """What makes a stored event one that search and /events serve: the terms of the search index's
    predicate (models.SEARCHABLE_*), in the order SQLite needs to match it."""
    return sa.and_(TABLE.c.ever_on_sale, TABLE.c.hidden_at.is_(None))


def in_window(
    query: sa.Select[Any],
    *,
    dialect: str,
    starts_at: Any = None,
    ends_at: Any = None,
    providers: Sequence[Any] | None = None,
) -> sa.Select[Any]:
    """`query` narrowed to searchable events in the window; bounds and providers may be values or
    bind parameters (the fast path compiles this once per shape)."""
    query = query.where(searchable())
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
    return query


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
    query = sa.select(*SUMMARY_COLUMNS).where(TABLE.c.id == event_id, searchable())
    if providers is not None:
        query = query.where(TABLE.c.provider.in_(providers))
    return session.execute(query).first()
