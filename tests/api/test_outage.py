"""A database outage, as a client and an operator see it: a prompt 500 in the spec's envelope, and
one log line per request rather than a stack trace."""

import logging
import socket
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.plugins.registry import Registry
from core.settings import Settings


@pytest.fixture
def silent_database() -> Iterator[int]:
    """A port that completes TCP handshakes and then never says a word, like a hung server."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _app(port: int) -> TestClient:
    settings = Settings(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/marquee",
        DATABASE_CONNECT_TIMEOUT_SECONDS=1,
    )
    # raise_server_exceptions=True: an exception that escaped the handlers would fail the test.
    return TestClient(create_app(settings, registry=Registry()), raise_server_exceptions=True)


@pytest.mark.timeout(30)
def test_search_against_a_hung_database_answers_500_within_the_connect_timeout(
    silent_database: int,
) -> None:
    with _app(silent_database) as client:
        started = time.monotonic()
        response = client.get("/search")
        elapsed = time.monotonic() - started
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "the event store is unreachable; try again shortly",
        },
        "data": None,
    }
    # The connect timeout is 1 s; the bound leaves room for a loaded machine, not for a hang.
    assert elapsed < 10


def test_an_outage_logs_one_line_per_request_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    caplog.set_level(logging.INFO)
    with _app(closed_port) as client:
        assert client.get("/search").status_code == 500
        assert client.get("/search?starts_at=2021-01-01T00:00:00Z").status_code == 500
    records = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage().split(":")[0] for record in records] == [
        "database unavailable on GET /search"
    ] * 2
    assert not any(record.exc_info for record in records)
