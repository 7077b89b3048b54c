"""The common upsert every provider's events go through: one statement per batch.

On PostgreSQL a batch travels as one array per column (`INSERT … SELECT … FROM unnest(…)`), so
the statement is the same few parameters whatever the batch size, and `RETURNING (xmax = 0)`
tells inserts from updates. On SQLite it is a multi-row VALUES statement after a select of the
ids already stored. On both, a row whose feed values are unchanged is not rewritten.
"""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.store.models import FEED_COLUMNS, Event

TABLE = Event.__table__  # type: ignore[attr-defined]
# Columns sent per row; the two timestamps are the batch's `now`.
ROW_COLUMNS = tuple(c.name for c in TABLE.columns if c.name not in ("first_seen_at", "updated_at"))


@dataclass(slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: "UpsertCounts") -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


def _changed(stored: str, new: str) -> str:
    """SQL: the stored row differs from the new values in what a feed gives, or the new values
    bring its first on-sale sighting."""
    terms = [f"{stored}.{name} IS DISTINCT FROM {new}.{name}" for name in FEED_COLUMNS]
    terms.append(f"({new}.ever_on_sale AND NOT {stored}.ever_on_sale)")
    return " OR ".join(terms)


@cache
def _postgresql_statement() -> sa.TextClause:
    dialect = postgresql.dialect()
    arrays = ", ".join(
        f"CAST(:{name} AS {TABLE.c[name].type.compile(dialect=dialect)}[])" for name in ROW_COLUMNS
    )
    columns = ", ".join((*ROW_COLUMNS, "first_seen_at", "updated_at"))
    updates = ", ".join(
        [f"{name} = excluded.{name}" for name in FEED_COLUMNS]
        + ["ever_on_sale = event.ever_on_sale OR excluded.ever_on_sale"]
        + ["updated_at = excluded.updated_at"]
    )
    return sa.text(
        f"INSERT INTO event ({columns}) "
        f"SELECT batch.*, CAST(:now AS timestamptz), CAST(:now AS timestamptz) "
        f"FROM unnest({arrays}) AS batch({', '.join(ROW_COLUMNS)}) "
        f"ON CONFLICT (provider, external_id) DO UPDATE SET {updates} "
        f"WHERE {_changed('event', 'excluded')} "
        # xmax is 0 only on a row version no transaction has locked: one this statement inserted.
        f"RETURNING (xmax = 0) AS inserted"
    )


@cache
def _sqlite_statement() -> Any:
    insert = sqlite.insert(TABLE)
    excluded = insert.excluded
    changed = sa.or_(
        *(TABLE.c[name].is_distinct_from(excluded[name]) for name in FEED_COLUMNS),
        sa.and_(excluded.ever_on_sale, sa.not_(TABLE.c.ever_on_sale)),
    )
    return insert.on_conflict_do_update(
        index_elements=[TABLE.c.provider, TABLE.c.external_id],
        set_={
            **{name: excluded[name] for name in FEED_COLUMNS},
            "ever_on_sale": sa.or_(TABLE.c.ever_on_sale, excluded.ever_on_sale),
            "updated_at": excluded.updated_at,
        },
        where=changed,
    ).returning(TABLE.c.id)


def _one_per_id(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One statement cannot touch a row twice: of rows sharing an id the last wins, but an on-sale
    sighting of any of them is kept, as it would be had they come in separate batches."""
    by_id: dict[Any, dict[str, Any]] = {}
    ever_on_sale: dict[Any, bool] = {}
    for row in rows:
        by_id[row["id"]] = row
        ever_on_sale[row["id"]] = ever_on_sale.get(row["id"], False) or bool(row["on_sale"])
    return [{**row, "ever_on_sale": ever_on_sale[id_]} for id_, row in by_id.items()]


def upsert_events(
    session: Session, rows: Sequence[dict[str, Any]], *, now: datetime
) -> UpsertCounts:
    """Insert new events and update changed ones; rows whose feed values are unchanged are not
    rewritten. The caller owns the transaction."""
    values = _one_per_id(rows)
    if not values:
        return UpsertCounts()
    if session.get_bind().dialect.name == "postgresql":
        arrays = {name: [row[name] for row in values] for name in ROW_COLUMNS}
        written = session.execute(_postgresql_statement(), {**arrays, "now": now}).scalars().all()
        inserted = sum(written)
        return UpsertCounts(
            inserted=inserted,
            updated=len(written) - inserted,
            unchanged=len(values) - len(written),
        )
    return _upsert_sqlite(session, values, now)


def _upsert_sqlite(session: Session, values: list[dict[str, Any]], now: datetime) -> UpsertCounts:
    ids = [row["id"] for row in values]
    existing = set(session.execute(sa.select(TABLE.c.id).where(TABLE.c.id.in_(ids))).scalars())
    stamped = [{**row, "first_seen_at": now, "updated_at": now} for row in values]
    # Compiled once, sent as multi-row VALUES statements.
    written = set(session.execute(_sqlite_statement(), stamped).scalars())
    updated = len(written & existing)
    return UpsertCounts(
        inserted=len(written - existing), updated=updated, unchanged=len(existing) - updated
    )


class SeenIds:
    """The ids one fetch has already stored, in a temporary table of its transaction: a feed
    naming an event twice is caught however far apart the copies are, in bounded memory."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        if self.postgresql:
            session.execute(
                sa.text(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS marquee_seen_ids "
                    "(id uuid PRIMARY KEY) ON COMMIT DROP"
                )
            )
        else:
            # SQLite has no ON COMMIT DROP: the table lives with the pooled connection.
            session.execute(
                sa.text(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS marquee_seen_ids "
                    "(id BLOB PRIMARY KEY) WITHOUT ROWID"
                )
            )
            session.execute(sa.text("DELETE FROM temp.marquee_seen_ids"))

    def first_sightings(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `ids` (distinct) not seen before in this transaction; all are seen after."""
        if not ids:
            return set()
        if self.postgresql:
            new = self.session.execute(
                sa.text(
                    "INSERT INTO marquee_seen_ids (id) SELECT unnest(CAST(:ids AS uuid[])) "
                    "ON CONFLICT DO NOTHING RETURNING id"
                ),
                {"ids": list(ids)},
            ).scalars()
            return set(new)
        found: set[uuid.UUID] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            placeholders = ", ".join(f"(:i{n})" for n in range(len(chunk)))
            new = self.session.execute(
                sa.text(
                    f"INSERT INTO temp.marquee_seen_ids (id) VALUES {placeholders} "
                    "ON CONFLICT DO NOTHING RETURNING id"
                ),
                {f"i{n}": id_.bytes for n, id_ in enumerate(chunk)},
            ).scalars()
            found.update(uuid.UUID(bytes=raw) for raw in new)
        return found
