"""The common upsert every provider's events go through: one bulk statement per batch."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.models import FEED_COLUMNS, Event

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


def _insert_for(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(TABLE)
    if dialect == "sqlite":
        return sqlite.insert(TABLE)
    raise RuntimeError(f"no upsert for the {dialect} dialect")


def upsert_events(
    session: Session, rows: Sequence[dict[str, Any]], *, now: datetime
) -> UpsertCounts:
    """Insert new events and update changed ones; rows whose feed values are unchanged are not
    rewritten. The caller owns the transaction."""
    # One statement cannot touch a row twice: within a batch the last occurrence wins.
    by_id = {row["id"]: row for row in rows}
    if not by_id:
        return UpsertCounts()
    values = [
        {**row, "ever_on_sale": row["on_sale"], "first_seen_at": now, "updated_at": now}
        for row in by_id.values()
    ]
    existing = set(session.execute(sa.select(TABLE.c.id).where(TABLE.c.id.in_(by_id))).scalars())

    insert = _insert_for(session)
    excluded = insert.excluded
    changed = sa.or_(*(TABLE.c[name].is_distinct_from(excluded[name]) for name in FEED_COLUMNS))
    statement = (
        insert.values(values)
        .on_conflict_do_update(
            index_elements=[TABLE.c.provider, TABLE.c.external_id],
            set_={
                **{name: excluded[name] for name in FEED_COLUMNS},
                "ever_on_sale": sa.or_(TABLE.c.ever_on_sale, excluded.ever_on_sale),
                "updated_at": excluded.updated_at,
            },
            where=changed,
        )
        .returning(TABLE.c.id)
    )
    written = set(session.execute(statement).scalars())
    updated = len(written & existing)
    return UpsertCounts(
        inserted=len(written - existing), updated=updated, unchanged=len(existing) - updated
    )
