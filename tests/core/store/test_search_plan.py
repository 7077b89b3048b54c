"""/search reads the partial (starts_at, id) index on both databases: a range scan in order,
not a scan of every event of the provider followed by a sort."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

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
