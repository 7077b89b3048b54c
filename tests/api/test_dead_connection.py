"""The search pool never pings before a statement: a pooled connection the database dropped (a
restart, a failover, an idle timeout) fails its statement, is discarded, and the statement is
retried once on a fresh connection, so the client never sees it."""

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

KILL_OTHERS = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


def test_a_search_on_connections_the_database_dropped_is_answered(
    client: TestClient, database_url: str
) -> None:
    # Enough at once to leave several connections in the search pool.
    assert client.get("/search?starts_at=2021-01-01T00:00:00Z").status_code == 200
    admin = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with admin.connect() as connection:
            killed = connection.execute(sa.text(KILL_OTHERS)).scalar()
    finally:
        admin.dispose()
    assert killed >= 1

    for n in range(3):  # new windows: each needs the database, not the cache
        response = client.get(f"/search?starts_at=2021-0{n + 2}-01T00:00:00Z")
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"events": []}, "error": None}
