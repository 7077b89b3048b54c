"""The common upsert every provider's events go through: one bulk statement per batch."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.store.models import FEED_COLUMNS, Event

TABLE = Event.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: "UpsertCounts") -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


@cache
def _upsert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … WHERE the stored row IS DISTINCT FROM the new values."""
    dialects = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if dialect not in dialects:
        raise RuntimeError(f"no upsert for the {dialect} dialect")
    insert = dialects[dialect](TABLE)
    excluded = insert.excluded
    changed = sa.or_(
        *(TABLE.c[name].is_distinct_from(excluded[name]) for name in FEED_COLUMNS),
        # An on-sale sighting folded into the batch's last (off-sale) occurrence is news too.
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


def upsert_events(
    session: Session, rows: Sequence[dict[str, Any]], *, now: datetime
) -> UpsertCounts:
    """Insert new events and update changed ones; rows whose feed values are unchanged are not
    rewritten. The caller owns the transaction."""
    # One statement cannot touch a row twice: within a batch the last occurrence wins, but an
    # on-sale sighting of any occurrence is kept, as it would be had they come in separate batches.
    by_id: dict[Any, dict[str, Any]] = {}
    ever_on_sale: dict[Any, bool] = {}
    for row in rows:
        by_id[row["id"]] = row
        ever_on_sale[row["id"]] = ever_on_sale.get(row["id"], False) or bool(row["on_sale"])
    if not by_id:
        return UpsertCounts()
    values = [
        {**row, "ever_on_sale": ever_on_sale[id_], "first_seen_at": now, "updated_at": now}
        for id_, row in by_id.items()
    ]
    existing = set(session.execute(sa.select(TABLE.c.id).where(TABLE.c.id.in_(by_id))).scalars())

    statement = _upsert_statement(session.get_bind().dialect.name)
    # Parameters apart from the statement: compiled once, sent as multi-row VALUES batches.
    written = set(session.execute(statement, values).scalars())
    updated = len(written & existing)
    return UpsertCounts(
        inserted=len(written - existing), updated=updated, unchanged=len(existing) - updated
    )
