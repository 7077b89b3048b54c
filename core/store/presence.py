"""Which events a successful fetch saw: the clock retention ages events by.

Run in the fetch's transaction, after its upsert (`EventWriter.finish`). Events the fetch did not
see, and that were present until now, get `last_seen_at` = the provider's previous successful fetch;
events it saw again lose `last_seen_at` and `hidden_at` (a hidden event that comes back is served
again), and an archived event that came back takes its tombstone's ever-on-sale flag. Only rows
whose presence changes are written: a refetch of an unchanged feed rewrites nothing.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.store.models import Event, EventTombstone, ProviderState, UTCDateTime

EVENTS = Event.__table__  # type: ignore[attr-defined]
TOMBSTONES = EventTombstone.__table__  # type: ignore[attr-defined]
STATES = ProviderState.__table__  # type: ignore[attr-defined]
# The ids a fetch saw: its stored rows (the upsert's temporary tables), and the keys of items it
# could not read, which are in the feed all the same (`marquee_sighted`).
_STAGED = sa.table("marquee_staged", sa.column("id", sa.Uuid()))
_SEEN_SQLITE = sa.table("marquee_seen_ids", sa.column("id"), schema="temp")
SIGHTED = sa.table("marquee_sighted", sa.column("id", sa.Uuid()))


@dataclass(slots=True)
class Presence:
    absent: int = 0  # events that dropped out of the feed with this fetch
    returned: int = 0  # events back in the feed after missing from earlier fetches


def sighted_table(session: Session) -> None:
    """Create the (transaction's) table of ids seen in items the fetch could not read."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("CREATE TEMPORARY TABLE IF NOT EXISTS marquee_sighted (id uuid) ON COMMIT DROP")
        )
        session.execute(sa.text("DELETE FROM marquee_sighted"))
    else:
        # Same format as event.id on SQLite (32 hex digits); no ON COMMIT DROP there.
        session.execute(
            sa.text("CREATE TEMPORARY TABLE IF NOT EXISTS marquee_sighted (id CHAR(32))")
        )
        session.execute(sa.text("DELETE FROM temp.marquee_sighted"))


def _seen_ids(dialect: str) -> sa.Select[Any]:
    """SQL: the ids the fetch saw, one sublink the planner hashes (a semi or anti join); two
    EXISTS joined by OR would be re-run per stored row."""
    if dialect == "postgresql":
        return sa.union_all(sa.select(_STAGED.c.id), sa.select(SIGHTED.c.id))  # type: ignore[return-value]
    return sa.union_all(
        sa.select(sa.func.lower(sa.func.hex(_SEEN_SQLITE.c.id))), sa.select(SIGHTED.c.id)
    )  # type: ignore[return-value]


def _in_fetch(dialect: str) -> sa.ColumnElement[bool]:
    """SQL: the event's id is among those the fetch saw."""
    return EVENTS.c.id.in_(_seen_ids(dialect))


def _not_in_fetch(dialect: str) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        seen = _seen_ids(dialect).subquery()
        # NOT EXISTS, never NOT IN: a hash anti join, and no NULL pitfalls.
        return ~sa.exists().where(seen.c.id == EVENTS.c.id)
    return EVENTS.c.id.not_in(_seen_ids(dialect))


def last_success_at(session: Session, provider: str) -> datetime | None:
    """The time of `provider`'s latest successful fetch (its events' sighting time), if any."""
    return session.execute(
        sa.select(STATES.c.last_success_at).where(STATES.c.provider == provider)
    ).scalar()


def record_presence(session: Session, *, provider: str, now: datetime, inserted: int) -> Presence:
    """Mark who dropped out of and who came back into `provider`'s feed with this fetch, stamped
    `now`, and make `now` its latest successful fetch."""
    dialect = session.get_bind().dialect.name
    previous = last_success_at(session, provider)
    of_provider = EVENTS.c.provider == provider
    if dialect == "postgresql":
        # The fetch's temporary tables have no statistics and the event table's may predate this
        # fetch's inserts: the planner then takes a nested loop, a scan of the staged ids per stored
        # row (minutes for 100k events). Hash joins are linear whatever the estimates say.
        session.execute(sa.text("SET LOCAL enable_nestloop = off"))
    returned = session.execute(
        sa.update(EVENTS)
        .where(of_provider, EVENTS.c.last_seen_at.is_not(None), _in_fetch(dialect))
        .values(last_seen_at=None, hidden_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    # Before this version recorded fetches, when an event was last seen is unknown: it ages from now.
    since = sa.literal(previous or now, UTCDateTime())
    absent = session.execute(
        sa.update(EVENTS)
        .where(of_provider, EVENTS.c.last_seen_at.is_(None), _not_in_fetch(dialect))
        .values(last_seen_at=since)
        .execution_options(synchronize_session=False)
    ).rowcount
    if dialect == "postgresql":
        session.execute(sa.text("SET LOCAL enable_nestloop = on"))
    if inserted:
        _take_tombstones(session, provider=provider, now=now)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(STATES)
        .values(provider=provider, last_success_at=now)
        .on_conflict_do_update(index_elements=[STATES.c.provider], set_={"last_success_at": now})
    )
    return Presence(absent=absent, returned=returned)


def _take_tombstones(session: Session, *, provider: str, now: datetime) -> None:
    """Events this fetch inserted that had been archived: on sale if they ever were; their
    tombstones go (their ids are their keys', so they already have their old ids)."""
    # Only events this fetch inserted have its time as their first sighting.
    inserted_now = sa.and_(EVENTS.c.provider == provider, EVENTS.c.first_seen_at == now)
    ever = sa.select(TOMBSTONES.c.id).where(
        TOMBSTONES.c.provider == provider, TOMBSTONES.c.ever_on_sale
    )
    session.execute(
        sa.update(EVENTS)
        .where(
            inserted_now, sa.not_(EVENTS.c.ever_on_sale), EVENTS.c.id.in_(ever.scalar_subquery())
        )
        .values(ever_on_sale=True)
        .execution_options(synchronize_session=False)
    )
    new = sa.select(EVENTS.c.id).where(inserted_now)
    session.execute(
        sa.delete(TOMBSTONES)
        .where(TOMBSTONES.c.provider == provider, TOMBSTONES.c.id.in_(new.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
