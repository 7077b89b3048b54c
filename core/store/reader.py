"""The API's read path: each search is one statement, compiled once per shape, run on a raw pooled
connection in autocommit (one round trip, no BEGIN/ROLLBACK, no pre-ping), its rows read by position.

Every call takes a `Guard`: when the caller's deadline passes, `Guard.cut()` ends the call's
database work from another thread (the socket is shut down, or SQLite interrupted), so a frozen
database can never keep a thread or a pooled connection past the deadline.
"""

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.db import interrupt, shut_down
from core.store.search import TABLE, fast_columns, in_window, searchable
from core.store.version import READ_SQL

CHUNK_ROWS = 1000  # rows per statement; a longer answer is streamed chunk by chunk


class StoreUnavailable(Exception):
    """The database did not answer (in time, or at all)."""


@dataclass(frozen=True, slots=True)
class SearchKey:
    """A search, normalised: the instants asked for (not the strings) and the providers searched."""

    starts_at: datetime | None
    ends_at: datetime | None
    providers: tuple[str, ...]  # sorted, without repeats


class Guard:
    """One caller's hold on the connection its call is using, so that a deadline can cut it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self._cutter: Callable[[Any], None] | None = None
        self.cut_off = False

    def attach(self, connection: Any, cutter: Callable[[Any], None]) -> bool:
        with self._lock:
            if self.cut_off:
                return False
            self._connection, self._cutter = connection, cutter
            return True

    def detach(self) -> bool:
        """Release the connection; True when the deadline had cut it."""
        with self._lock:
            self._connection = self._cutter = None
            return self.cut_off

    def cut(self) -> None:
        with self._lock:
            self.cut_off = True
            if self._connection is not None and self._cutter is not None:
                self._cutter(self._connection)


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    positions: tuple[str, ...] | None  # parameter order for positional DB-APIs (SQLite)
    defaults: dict[str, Any]
    converters: dict[str, Callable[[Any], Any]]

    @classmethod
    def compile(cls, statement: sa.Executable, dialect: sa.Dialect) -> "_Statement":
        compiled = statement.compile(dialect=dialect)
        converters = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        positions = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        return cls(str(compiled), positions, dict(compiled.params), converters)

    def parameters(self, values: dict[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        merged = dict(self.defaults)
        for name, value in values.items():
            convert = self.converters.get(name)
            merged[name] = convert(value) if convert is not None and value is not None else value
        if self.positions is None:
            return merged
        return tuple(merged[name] for name in self.positions)


class SearchReader:
    """Search and event reads on `engine` (an engine of `core.store.db.create_read_engine`)."""

    def __init__(self, engine: Engine, *, chunk_rows: int = CHUNK_ROWS) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.chunk_rows = chunk_rows
        self.capacity = engine.pool.size()  # type: ignore[attr-defined]
        self._error: type[Exception] = self.dialect.loaded_dbapi.Error
        self._cutter = interrupt if self.dialect.name == "sqlite" else shut_down
        self._statements: dict[tuple[Any, ...], _Statement] = {}

    # --- the reads --------------------------------------------------------------------------

    def search(
        self, key: SearchKey, *, after: Sequence[Any] | None = None, guard: Guard
    ) -> list[tuple[Any, ...]]:
        """Up to `chunk_rows` rows of `fast_columns`, in order, after the (starts_at, id) `after`
        (the last two values of a previous chunk's last row)."""
        shape = ("search", key.starts_at is not None, key.ends_at is not None)
        shape += (len(key.providers), after is not None)
        statement = self._statements.get(shape) or self._compile(shape)
        values: dict[str, Any] = {f"p{i}": name for i, name in enumerate(key.providers)}
        values["lo"], values["hi"] = key.starts_at, key.ends_at
        if after is not None:
            values["after_at"], values["after_id"] = after
        return self._rows(statement, values, guard)

    def event(
        self, event_id: uuid.UUID, providers: Sequence[str], *, guard: Guard
    ) -> tuple[Any, ...] | None:
        shape = ("event", len(providers))
        statement = self._statements.get(shape) or self._compile(shape)
        values: dict[str, Any] = {f"p{i}": name for i, name in enumerate(providers)}
        values["event_id"] = event_id
        rows = self._rows(statement, values, guard)
        return rows[0] if rows else None

    def version(self, *, guard: Guard) -> int:
        statement = self._statements.get(("version",)) or self._compile(("version",))
        rows = self._rows(statement, {}, guard)
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        self.engine.dispose()

    # --- statements ---------------------------------------------------------------------------

    def _compile(self, shape: tuple[Any, ...]) -> _Statement:
        name = self.dialect.name
        c = TABLE.c
        statement: sa.Executable
        if shape[0] == "version":
            statement = sa.text(READ_SQL)
        elif shape[0] == "event":
            providers = [sa.bindparam(f"p{i}", type_=sa.String) for i in range(shape[1])]
            statement = sa.select(*fast_columns(name)).where(
                c.id == sa.bindparam("event_id", type_=c.id.type),
                searchable(),
                c.provider.in_(providers) if providers else sa.false(),
            )
        else:
            _, has_start, has_end, count, has_after = shape
            instant = c.starts_at.type
            query = in_window(
                sa.select(*fast_columns(name)),
                dialect=name,
                starts_at=sa.bindparam("lo", type_=instant) if has_start else None,
                ends_at=sa.bindparam("hi", type_=instant) if has_end else None,
                providers=[sa.bindparam(f"p{i}", type_=sa.String) for i in range(count)] or None,
            )
            if not count:
                query = query.where(sa.false())  # no provider searched: nothing matches
            if has_after:
                query = query.where(self._after())
            statement = query.order_by(c.starts_at, c.id).limit(self.chunk_rows)
        compiled = _Statement.compile(statement, self.dialect)
        self._statements[shape] = compiled
        return compiled

    def _after(self) -> sa.ColumnElement[bool]:
        """Rows after a (starts_at, id) as the database gave them."""
        c = TABLE.c
        if self.dialect.name == "postgresql":
            return sa.tuple_(c.starts_at, c.id) > sa.tuple_(
                sa.bindparam("after_at", type_=sa.TIMESTAMP(timezone=True)),
                sa.bindparam("after_id", type_=sa.Uuid),
            )
        at = sa.bindparam("after_at", type_=sa.String)
        id_ = sa.bindparam("after_id", type_=sa.String)
        stored = sa.tuple_(sa.type_coerce(c.starts_at, sa.String), sa.type_coerce(c.id, sa.String))
        return stored > sa.tuple_(at, id_)

    # --- running them -------------------------------------------------------------------------

    def _rows(
        self, statement: _Statement, values: dict[str, Any], guard: Guard
    ) -> list[tuple[Any, ...]]:
        parameters = statement.parameters(values)
        # A pooled connection the database dropped fails its first statement: discard it and try
        # once more on a fresh one, instead of pinging before every statement.
        for attempt in (1, 2):
            try:
                pooled = self.engine.raw_connection()
            except (sa.exc.DBAPIError, sa.exc.TimeoutError, self._error) as exc:
                raise StoreUnavailable(type(exc.__cause__ or exc).__name__) from exc
            connection = pooled.dbapi_connection
            try:
                if not guard.attach(connection, self._cutter):
                    raise StoreUnavailable("deadline passed")
                try:
                    cursor = connection.cursor()
                    try:
                        cursor.execute(statement.sql, parameters)
                        return cursor.fetchall()
                    finally:
                        cursor.close()
                finally:
                    cut = guard.detach()
            except self._error as exc:
                lost = cut or bool(
                    getattr(connection, "broken", False) or getattr(connection, "closed", 0)
                )
                if lost:
                    pooled.invalidate()
                if attempt == 1 and lost and not cut:
                    continue
                raise StoreUnavailable("deadline passed" if cut else type(exc).__name__) from exc
            finally:
                pooled.close()
        raise AssertionError("unreachable")
