"""Retention's three stages over one provider's events, and restoring an archive file.

An event's inactivity is the time from its last sighting (`last_seen_at`, set once a successful
fetch misses it) to its provider's latest successful fetch (`provider_state`): an event in the
latest feed is never inactive, and a provider that is down ages nothing.

Each stage is one bulk statement per batch, each batch its own transaction (with the data version
bumped), so a process killed at any point leaves a consistent store:

- hide: `hidden_at` is set; the event stays stored but is not served.
- archive: the events are written to one gzip JSON Lines file, which is fsynced and renamed into
  place *before* any row is deleted; then each batch deletes its rows and leaves their tombstones.
  Killed while writing, only a `.partial` file is left; killed after, the rows still stored are
  archived again by the next pass (restoring either file is idempotent).
- purge: events, and tombstones, are deleted.
"""

import contextlib
import gzip
import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import batched
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.errors import MarqueeError
from core.retention.policy import RetentionPolicy
from core.store.db import transaction
from core.store.models import Event, EventTombstone, UTCDateTime, utcnow
from core.store.presence import last_success_at
from core.store.version import bump_data_version

EVENTS = Event.__table__  # type: ignore[attr-defined]
TOMBSTONES = EventTombstone.__table__  # type: ignore[attr-defined]
ARCHIVE_SUFFIX = ".jsonl.gz"
PARTIAL_SUFFIX = ".partial"


class ArchiveError(MarqueeError):
    """An archive file cannot be written or read back."""


@dataclass(slots=True)
class StageCounts:
    """Events moved (or, in a dry run, that would move) by each stage of one pass."""

    hidden: int = 0
    archived: int = 0
    purged: int = 0
    archive_file: Path | None = None

    def as_dict(self) -> dict[str, int]:
        return {"hidden": self.hidden, "archived": self.archived, "purged": self.purged}


def _inactive(provider: str, cutoff: datetime) -> sa.ColumnElement[bool]:
    """SQL: the provider's event, missing from its feed since at or before `cutoff`."""
    return sa.and_(
        EVENTS.c.provider == provider,
        EVENTS.c.last_seen_at.is_not(None),
        EVENTS.c.last_seen_at <= cutoff,
    )


class Pass:
    """One retention pass over one provider. `keep_going` is asked between batches; a pass whose
    lock was lost stops there (what it did so far is consistent). `counts` is what the pass has
    moved so far, also when `run` raised midway (the stages before, the batches done)."""

    def __init__(
        self,
        engine: Engine,
        provider: str,
        policy: RetentionPolicy,
        *,
        archive_dir: Path,
        batch_size: int,
        dry_run: bool = False,
        keep_going: Callable[[], None] = lambda: None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine, self.provider, self.policy = engine, provider, policy
        self.archive_dir, self.batch_size, self.dry_run = archive_dir, batch_size, dry_run
        self.keep_going, self.now = keep_going, now
        self.counts = StageCounts()

    def run(self) -> StageCounts:
        counts = self.counts = StageCounts()
        with transaction(self.engine) as session:
            latest = last_success_at(session, self.provider)
        if latest is None:
            return counts  # never fetched successfully under retention: nothing has aged
        cutoff = {
            stage: latest - timedelta(days=days)
            for stage, days in self.policy.days().items()
            if days is not None
        }
        if "hide" in cutoff:
            counts.hidden = self.hide(cutoff["hide"])
        if "archive" in cutoff:
            counts.archived, counts.archive_file = self.archive(cutoff["archive"])
        if "purge" in cutoff:
            counts.purged = self.purge(cutoff["purge"])
        return counts

    # --- hide ------------------------------------------------------------------------------------

    def hide(self, cutoff: datetime) -> int:
        where = sa.and_(_inactive(self.provider, cutoff), EVENTS.c.hidden_at.is_(None))
        if self.dry_run:
            return self._count(EVENTS, where)
        return self._in_batches(
            EVENTS,
            where,
            lambda ids: sa.update(EVENTS).where(EVENTS.c.id.in_(ids)).values(hidden_at=self.now()),
            progress="hidden",
        )

    # --- archive ---------------------------------------------------------------------------------

    def archive(self, cutoff: datetime) -> tuple[int, Path | None]:
        where = _inactive(self.provider, cutoff)
        if self.dry_run:
            return self._count(EVENTS, where), None
        started = self.now()
        path = self.archive_dir / f"{self.provider}-{started:%Y%m%dT%H%M%S%fZ}{ARCHIVE_SUFFIX}"
        written = self._write_archive(path, where)
        if not written:
            return 0, None
        self.counts.archive_file = path
        archived = 0
        for ids in batched(read_archive_ids(path), self.batch_size):
            self.keep_going()
            with transaction(self.engine) as session:
                done = _archive_rows(session, ids, where, now=self.now())
                bump_data_version(session=session)
            archived += done
            self.counts.archived += done
        return archived, path

    def _write_archive(self, path: Path, where: sa.ColumnElement[bool]) -> int:
        """Every stored column of every matching event into `path`, complete and on disk before
        this returns; the number of events written."""
        partial = path.with_name(path.name + PARTIAL_SUFFIX)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with partial.open("wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb") as packed:
                    for rows in self._pages(where):
                        self.keep_going()
                        packed.write(b"".join(_archive_line(row) for row in rows))
                        written += len(rows)
                raw.flush()
                os.fsync(raw.fileno())
            if not written:
                partial.unlink()
                return 0
            os.replace(partial, path)
            _fsync_directory(path.parent)
        except OSError as exc:
            # Best effort: the directory may not even exist (a file in its way, say).
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise ArchiveError(f"cannot write archive {path}: {exc.strerror or exc}") from exc
        return written

    def _pages(self, where: sa.ColumnElement[bool]) -> Iterator[list[sa.Row[Any]]]:
        """The matching events, all columns, a batch at a time along the absent-events index."""
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            query = sa.select(EVENTS).where(where, *_after(EVENTS, after))
            query = query.order_by(EVENTS.c.last_seen_at, EVENTS.c.id).limit(self.batch_size)
            with transaction(self.engine) as session:
                rows = list(session.execute(query))
            if not rows:
                return
            yield rows
            after = (rows[-1].last_seen_at, rows[-1].id)

    # --- purge -----------------------------------------------------------------------------------

    def purge(self, cutoff: datetime) -> int:
        events = _inactive(self.provider, cutoff)
        tombstones = sa.and_(
            TOMBSTONES.c.provider == self.provider, TOMBSTONES.c.last_seen_at <= cutoff
        )
        if self.dry_run:
            return self._count(EVENTS, events) + self._count(TOMBSTONES, tombstones)
        purged = self._in_batches(
            EVENTS,
            events,
            lambda ids: sa.delete(EVENTS).where(EVENTS.c.id.in_(ids)),
            progress="purged",
        )
        return purged + self._in_batches(
            TOMBSTONES,
            tombstones,
            lambda ids: sa.delete(TOMBSTONES).where(TOMBSTONES.c.id.in_(ids)),
            progress="purged",
            bump=False,  # tombstones are never served
        )

    # --- shared ----------------------------------------------------------------------------------

    def _count(self, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
        with transaction(self.engine) as session:
            return session.execute(
                sa.select(sa.func.count()).select_from(table).where(where)
            ).scalar_one()

    def _in_batches(
        self,
        table: sa.Table,
        where: sa.ColumnElement[bool],
        change: Callable[[Any], Any],
        *,
        progress: str,
        bump: bool = True,
    ) -> int:
        """Apply `change` (an UPDATE or DELETE of the ids it is given) to the rows `where` selects,
        one batch per statement and transaction, until none is left; each batch is added to
        `self.counts.<progress>` as it commits. Batches walk the (provider, last_seen_at, id) index
        from where the last one ended, so a pass is linear in the rows it moves: rows already
        hidden, or deleted but not yet vacuumed, are never scanned again."""
        moved = 0
        after: tuple[datetime, uuid.UUID] | None = None
        while True:
            self.keep_going()
            ids = sa.select(table.c.id).where(where, *_after(table, after))
            ids = ids.order_by(table.c.last_seen_at, table.c.id).limit(self.batch_size)
            statement = change(ids.scalar_subquery()).returning(table.c.last_seen_at, table.c.id)
            with transaction(self.engine) as session:
                rows = session.execute(statement.execution_options(synchronize_session=False)).all()
                if rows and bump:
                    bump_data_version(session=session)
            moved += len(rows)
            setattr(self.counts, progress, getattr(self.counts, progress) + len(rows))
            if len(rows) < self.batch_size:
                return moved
            after = max((row[0], row[1]) for row in rows)


def _after(
    table: sa.Table, after: tuple[datetime, uuid.UUID] | None
) -> list[sa.ColumnElement[bool]]:
    """SQL: past the (last_seen_at, id) where the previous batch ended (keyset pagination)."""
    if after is None:
        return []
    seen, id_ = after
    bound = sa.tuple_(sa.literal(seen, table.c.last_seen_at.type), sa.literal(id_, table.c.id.type))
    return [sa.tuple_(table.c.last_seen_at, table.c.id) > bound]


def _archive_rows(
    session: Session, ids: Sequence[uuid.UUID], where: sa.ColumnElement[bool], *, now: datetime
) -> int:
    """Delete the still-inactive events among `ids`, leaving their tombstones; how many."""
    matching = sa.and_(EVENTS.c.id.in_(ids), where)
    kept = sa.select(
        EVENTS.c.id,
        EVENTS.c.provider,
        EVENTS.c.external_id,
        EVENTS.c.ever_on_sale,
        EVENTS.c.last_seen_at,
        sa.literal(now, TOMBSTONES.c.archived_at.type).label("archived_at"),
    ).where(matching)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    columns = ["id", "provider", "external_id", "ever_on_sale", "last_seen_at", "archived_at"]
    session.execute(insert(TOMBSTONES).from_select(columns, kept).on_conflict_do_nothing())
    return session.execute(
        sa.delete(EVENTS).where(matching).execution_options(synchronize_session=False)
    ).rowcount


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable."""
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# --- the archive file format: one JSON object per line, every column of `event` ------------------


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _archive_line(row: sa.Row[Any]) -> bytes:
    record = {name: _plain(value) for name, value in row._mapping.items()}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _aware(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed


def _plain_value(python: type) -> Callable[[Any], Any]:
    """A JSON value of a text, number or boolean column, checked: what the store would refuse (or
    worse, coerce) is refused here, on its line."""

    def check(value: Any) -> Any:
        if python is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, python) or (isinstance(value, bool) and python is not bool):
            raise TypeError(f"{type(value).__name__}, not {python.__name__}")
        return value

    return check


def _parsers() -> dict[str, Callable[[Any], Any]]:
    """How each stored column's JSON value becomes its Python value again."""
    parsers: dict[str, Callable[[Any], Any]] = {}
    for column in EVENTS.columns:
        python = str if isinstance(column.type, sa.String) else column.type.python_type
        if python is uuid.UUID:
            parsers[column.name] = uuid.UUID
        elif isinstance(column.type, UTCDateTime):
            parsers[column.name] = _aware
        elif python is date:
            parsers[column.name] = date.fromisoformat
        elif python is time:
            parsers[column.name] = time.fromisoformat
        else:
            parsers[column.name] = _plain_value(python)
    return parsers


def _parse_record(
    record: Any, parsers: dict[str, Callable[[Any], Any]], required: frozenset[str]
) -> dict[str, Any]:
    """One archive line's object as a stored row; ValueError or TypeError says what is wrong."""
    if not isinstance(record, dict):
        raise TypeError(f"a JSON {type(record).__name__}, not an object")
    missing = set(parsers) - set(record)
    if missing:
        raise ValueError(f"missing {', '.join(sorted(missing))}")
    row: dict[str, Any] = {}
    for name, parse in parsers.items():
        value = record[name]
        if value is None:
            if name in required:
                raise ValueError(f"{name} is null")
            row[name] = None
            continue
        try:
            row[name] = parse(value)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ValueError(f"{name}: {exc}") from None
        length = getattr(EVENTS.c[name].type, "length", None)
        if length is not None and len(row[name]) > length:
            raise ValueError(f"{name} is longer than {length} characters")
    return row


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """The events of an archive file, as stored rows; ArchiveError names a line that is not one."""
    parsers = _parsers()
    required = frozenset(column.name for column in EVENTS.columns if not column.nullable)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    yield _parse_record(json.loads(line), parsers, required)
                except (ValueError, TypeError, AttributeError) as exc:
                    raise ArchiveError(
                        f"{path}, line {number}: not an archived event ({exc})"
                    ) from None
    except (OSError, EOFError) as exc:
        raise ArchiveError(f"cannot read archive {path}: {exc}") from exc


def read_archive_ids(path: Path) -> Iterator[uuid.UUID]:
    for row in read_archive(path):
        yield row["id"]


# Rows per INSERT of a restore: 18 columns each stay far under SQLite's 32,766 parameters.
RESTORE_ROWS = 500


def restore(engine: Engine, path: Path) -> tuple[int, int]:
    """Put an archive file's events back, in one transaction: (restored, already stored). Events
    already stored (restored before, or back in their feed since) are left as they are; restored
    events are served again (not hidden) and lose their tombstones. Restoring twice changes
    nothing."""
    restored = seen = 0
    with transaction(engine) as session:
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        for rows in batched(read_archive(path), RESTORE_ROWS):
            seen += len(rows)
            for row in rows:
                row["hidden_at"] = None
            result = session.execute(
                insert(EVENTS).values(list(rows)).on_conflict_do_nothing().returning(EVENTS.c.id)
            )
            back = list(result.scalars())
            restored += len(back)
            if back:
                session.execute(sa.delete(TOMBSTONES).where(TOMBSTONES.c.id.in_(back)))
        if restored:
            bump_data_version(session=session)
    return restored, seen - restored
