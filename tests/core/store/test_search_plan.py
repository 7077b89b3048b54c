"""/search reads the partial (starts_at, id) index on both databases: a range scan in order,
not a scan of every event of the provider followed by a sort."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.store.reader import SearchKey, SearchReader
from core.store.search import search_query

INDEX = "ix_event_searchable_starts_at"
WINDOW = {
    "starts_at": datetime(2021, 3, 1, tzinfo=UTC),
    "ends_at": datetime(2021, 3, 2, tzinfo=UTC),
}


def _plan(engine: Engine, **bounds: object) -> str:
    query = search_query(dialect=engine.dialect.name, providers=["fever", "venue_a"], **bounds)
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}"))
            return "\n".join(row[3] for row in rows)
        # On a near-empty table PostgreSQL rightly prefers a sequential scan; forbid it to see
        # whether the index can serve the query at all.
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        return "\n".join(row[0] for row in connection.execute(sa.text(f"EXPLAIN {compiled}")))


@pytest.mark.parametrize("bounds", [WINDOW, {}], ids=["window", "everything"])
def test_search_uses_the_searchable_index_in_order(engine: Engine, bounds: dict) -> None:
    if not bounds and engine.dialect.name == "postgresql":
        pytest.skip("the whole table: PostgreSQL's cost-based choice (scan and sort) is sound")
    plan = _plan(engine, **bounds)
    assert INDEX in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


@pytest.mark.parametrize(
    ("bounds", "after"),
    [
        ({**WINDOW}, False),
        ({**WINDOW}, True),
        ({}, True),
    ],
    ids=["window", "window-continued", "everything-continued"],
)
def test_search_chunks_use_the_searchable_index_in_order(
    engine: Engine, bounds: dict, after: bool
) -> None:
    """The fast path's statements, and the one that continues a streamed answer after its last
    row, are range scans of the same index."""
    if not bounds and engine.dialect.name == "postgresql":
        pytest.skip("no bounds on a near-empty table: PostgreSQL's cost-based choice is sound")
    reader = SearchReader(engine)
    key = SearchKey(bounds.get("starts_at"), bounds.get("ends_at"), ("fever", "venue_a"))
    shape = ("search", key.starts_at is not None, key.ends_at is not None, 2, after)
    statement = reader._compile(shape)
    values = {"p0": "fever", "p1": "venue_a", "lo": key.starts_at, "hi": key.ends_at}
    if after:
        sqlite = engine.dialect.name == "sqlite"
        values["after_at"] = "2021-03-01 10:00:00.000000" if sqlite else "2021-03-01 10:00:00+00"
        values["after_id"] = "0" * 32 if sqlite else "00000000-0000-0000-0000-000000000000"
    pooled = engine.raw_connection()
    try:
        cursor = pooled.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement.sql}", statement.parameters(values))
            plan = "\n".join(row[3] for row in cursor.fetchall())
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement.sql}", statement.parameters(values))
            plan = "\n".join(row[0] for row in cursor.fetchall())
        pooled.rollback()
    finally:
        pooled.close()
    assert INDEX in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan
