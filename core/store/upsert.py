"""The common upsert every provider's events go through, in the caller's transaction.

A row whose feed values are unchanged is never rewritten (`… DO UPDATE … WHERE … IS DISTINCT
FROM …`), and when a fetch gives the same event twice its first copy is the one stored.

- PostgreSQL: each batch is staged with COPY into a temporary table; `finish` upserts them all in
  one `INSERT … SELECT DISTINCT ON (id)`, whose `RETURNING (xmax = 0)` tells inserts from updates.
- SQLite: each batch is one multi-row upsert run by sqlite3's executemany, after a temporary table
  of the ids seen so far sorts out the duplicates.
"""

import operator
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.store.models import FEED_COLUMNS, Event
from core.store.presence import SIGHTED, sighted_table

TABLE = Event.__table__  # type: ignore[attr-defined]
# Columns sent per row; the two timestamps are the fetch's `now`, and the retention columns are
# the presence step's (core.store.presence): an inserted event starts present and not hidden.
STAMPED_COLUMNS = ("first_seen_at", "updated_at")
ROW_COLUMNS = tuple(
    c.name for c in TABLE.columns if c.name not in (*STAMPED_COLUMNS, "last_seen_at", "hidden_at")
)
# Where each column's value comes from: the first sighting of an event is its only one so far.
_SOURCES = operator.itemgetter(
    *("on_sale" if name == "ever_on_sale" else name for name in ROW_COLUMNS)
)
# How many duplicated keys `finish` names; the count is always whole.
KEYS_SHOWN = 20


@dataclass(slots=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    # The external ids of the first duplicated copies, in feed order (at most KEYS_SHOWN).
    duplicate_keys: list[str] = field(default_factory=list)

    def add(self, other: "UpsertCounts") -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        room = KEYS_SHOWN - len(self.duplicate_keys)
        self.duplicate_keys.extend(other.duplicate_keys[: max(room, 0)])


def _changed(stored: str, new: str) -> str:
    """SQL: the stored row differs from the new values in what a feed gives, or the new values
    bring its first on-sale sighting."""
    terms = [f"{stored}.{name} IS DISTINCT FROM {new}.{name}" for name in FEED_COLUMNS]
    terms.append(f"({new}.ever_on_sale AND NOT {stored}.ever_on_sale)")
    return " OR ".join(terms)


def _updates() -> str:
    return ", ".join(
        [f"{name} = excluded.{name}" for name in FEED_COLUMNS]
        + ["ever_on_sale = event.ever_on_sale OR excluded.ever_on_sale"]
        + ["updated_at = excluded.updated_at"]
    )


class EventWriter:
    """Writes the events of one fetch: `write` each batch, then `finish` once for the counts."""

    def __init__(self, session: Session, *, now: datetime) -> None:
        self.session = session
        self.now = now
        self.counts = UpsertCounts()
        self._postgresql = session.get_bind().dialect.name == "postgresql"
        if self._postgresql:
            self._staged = 0
            session.execute(sa.text(_STAGING_TABLE))
            # Another writer earlier in this transaction may have left its rows.
            session.execute(sa.text("DELETE FROM marquee_staged"))
        else:
            self._seen = _SeenIds(session)
        sighted_table(session)

    def sight(self, ids: Sequence[uuid.UUID]) -> None:
        """Ids of events the feed gave in items that could not be read: still in the feed, so
        retention does not age them (their stored values stay as they were)."""
        if ids:
            self.session.execute(sa.insert(SIGHTED), [{"id": id_} for id_ in ids])

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Add normalised rows (the columns of `normalise`), in feed order."""
        if not rows:
            return
        if self._postgresql:
            self._stage(rows)
        else:
            self.counts.add(self._upsert_sqlite(rows))

    def finish(self) -> UpsertCounts:
        if self._postgresql and self._staged:
            self.counts = self._upsert_staged()
        return self.counts

    # --- PostgreSQL ------------------------------------------------------------------------------

    def _stage(self, rows: Sequence[dict[str, Any]]) -> None:
        driver = self.session.connection().connection.driver_connection
        columns = ", ".join(("seq", *ROW_COLUMNS))
        first = self._staged + 1
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY marquee_staged ({columns}) FROM STDIN") as copy,
        ):
            for seq, row in enumerate(rows, start=first):
                copy.write_row((seq, *_SOURCES(row)))
        self._staged += len(rows)

    def _upsert_staged(self) -> UpsertCounts:
        connection = self.session.connection()
        inserted, written, distinct, staged = connection.exec_driver_sql(
            _postgresql_statement(), {"now": self.now}
        ).one()
        counts = UpsertCounts(
            inserted=inserted,
            updated=written - inserted,
            unchanged=distinct - written,
            duplicates=staged - distinct,
        )
        if counts.duplicates:
            counts.duplicate_keys = list(
                connection.exec_driver_sql(_DUPLICATE_KEYS, {"shown": KEYS_SHOWN}).scalars()
            )
        return counts

    # --- SQLite ----------------------------------------------------------------------------------

    def _upsert_sqlite(self, rows: Sequence[dict[str, Any]]) -> UpsertCounts:
        firsts: dict[uuid.UUID, int] = {}
        repeated: list[int] = []
        for index, row in enumerate(rows):
            if row["id"] in firsts:
                repeated.append(index)
            else:
                firsts[row["id"]] = index
        new = self._seen.first_sightings(list(firsts))
        repeated.extend(index for id_, index in firsts.items() if id_ not in new)
        repeated.sort()
        values = [rows[index] for id_, index in firsts.items() if id_ in new]
        counts = _upsert_sqlite(self.session, values, self.now)
        counts.duplicates = len(repeated)
        counts.duplicate_keys = [rows[index]["external_id"] for index in repeated[:KEYS_SHOWN]]
        return counts


_STAGING_TABLE = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS marquee_staged (seq bigint, "
    + ", ".join(
        f"{name} {TABLE.c[name].type.compile(dialect=postgresql.dialect())}" for name in ROW_COLUMNS
    )
    + ") ON COMMIT DROP"
)

# The copies that come after the first of their event, in feed order.
_DUPLICATE_KEYS = (
    "SELECT external_id FROM (SELECT external_id, seq, "
    "row_number() OVER (PARTITION BY id ORDER BY seq) AS copy FROM marquee_staged) AS staged "
    "WHERE copy > 1 ORDER BY seq LIMIT %(shown)s"
)


@cache
def _postgresql_statement() -> str:
    columns = ", ".join(ROW_COLUMNS)
    return (
        f"WITH firsts AS (SELECT DISTINCT ON (id) {columns} FROM marquee_staged ORDER BY id, seq), "
        f"written AS (INSERT INTO event ({columns}, first_seen_at, updated_at) "
        f"SELECT {columns}, %(now)s, %(now)s FROM firsts "
        f"ON CONFLICT (provider, external_id) DO UPDATE SET {_updates()} "
        f"WHERE {_changed('event', 'excluded')} "
        # xmax is 0 only on a row version no transaction has locked: one this statement inserted.
        "RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*), "
        "(SELECT count(DISTINCT id) FROM marquee_staged), "
        "(SELECT count(*) FROM marquee_staged) FROM written"
    )


@cache
def _sqlite_statement() -> tuple[str, tuple[str, ...], tuple[Any, ...]]:
    """The driver-level statement, the column of each `?`, and each column's bind conversion:
    sqlite3's executemany runs it in C, where SQLAlchemy's would wrap every parameter."""
    dialect = sqlite.dialect()
    insert = sqlite.insert(TABLE)
    excluded = insert.excluded
    changed = sa.or_(
        *(TABLE.c[name].is_distinct_from(excluded[name]) for name in FEED_COLUMNS),
        sa.and_(excluded.ever_on_sale, sa.not_(TABLE.c.ever_on_sale)),
    )
    statement = insert.values(
        {name: sa.bindparam(name) for name in (*ROW_COLUMNS, *STAMPED_COLUMNS)}
    )
    statement = statement.on_conflict_do_update(
        index_elements=[TABLE.c.provider, TABLE.c.external_id],
        set_={
            **{name: excluded[name] for name in FEED_COLUMNS},
            "ever_on_sale": sa.or_(TABLE.c.ever_on_sale, excluded.ever_on_sale),
            "updated_at": excluded.updated_at,
        },
        where=changed,
    )
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or ())
    converters = tuple(
        TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    return str(compiled), names, converters


def _upsert_sqlite(session: Session, values: list[dict[str, Any]], now: datetime) -> UpsertCounts:
    if not values:
        return UpsertCounts()
    sql, names, converters = _sqlite_statement()
    stamped = (
        {**row, "ever_on_sale": row["on_sale"], "first_seen_at": now, "updated_at": now}
        for row in values
    )
    parameters = [
        tuple(
            row[name] if convert is None else convert(row[name])
            for name, convert in zip(names, converters, strict=True)
        )
        for row in stamped
    ]
    connection = session.connection()
    id_at = names.index("id")
    marks = ", ".join("?" for _ in parameters)
    stored = connection.exec_driver_sql(
        f"SELECT count(*) FROM event WHERE id IN ({marks})", tuple(p[id_at] for p in parameters)
    ).scalar_one()
    # Every new id is an insert; the other rows it changed are updates.
    changed = connection.exec_driver_sql(sql, parameters).rowcount
    inserted = len(values) - stored
    return UpsertCounts(
        inserted=inserted, updated=changed - inserted, unchanged=stored - (changed - inserted)
    )


class _SeenIds:
    """The ids a SQLite fetch has stored, in a temporary table: a feed naming an event twice is
    caught however far apart the copies are, in bounded memory."""

    def __init__(self, session: Session) -> None:
        self.session = session
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
        found: set[uuid.UUID] = set()
        for start in range(0, len(ids), 500):
            by_bytes = {id_.bytes: id_ for id_ in ids[start : start + 500]}
            placeholders = ", ".join("(?)" for _ in by_bytes)
            new = self.session.connection().exec_driver_sql(
                f"INSERT INTO temp.marquee_seen_ids (id) VALUES {placeholders} "
                "ON CONFLICT DO NOTHING RETURNING id",
                tuple(by_bytes),
            )
            found.update(by_bytes[raw] for raw in new.scalars())
        return found


def upsert_events(
    session: Session, rows: Sequence[dict[str, Any]], *, now: datetime
) -> UpsertCounts:
    """Insert new events and update changed ones, as one fetch of `rows`; rows whose feed values
    are unchanged are not rewritten. The caller owns the transaction."""
    writer = EventWriter(session, now=now)
    writer.write(rows)
    return writer.finish()
