"""HEAD is answered wherever GET is, with the same status and headers and no body: load balancers
health-check with HEAD."""

import pytest
from fastapi.testclient import TestClient

from tests.providers.fever.feeds import fetch_fever, fever_body
from tests.support.feed_server import FeedServer

CAMELA = "2fb4b80a-2718-5c33-b6d0-0ba0d04be9bd"
# Headers that legitimately differ between two answers to the same request.
VARYING = {"date"}


@pytest.mark.parametrize(
    "path",
    [
        "/search",
        "/search?starts_at=2021-06-30T21:00:00Z",
        "/search?starts_at=not-a-date",
        "/health",
        "/ready",
        "/providers",
        f"/events/{CAMELA}",
        "/events/not-a-uuid",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/no-such-route",
    ],
)
def test_head_answers_as_get_without_a_body(
    path: str, client: TestClient, engine, feed_server: FeedServer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    get = client.get(path)
    head = client.head(path)

    assert head.status_code == get.status_code
    assert head.content == b""
    shown = {k: v for k, v in head.headers.items() if k not in VARYING}
    expected = {k: v for k, v in get.headers.items() if k not in VARYING}
    if path == "/metrics":  # the request counters in the body move; its length may too
        shown.pop("content-length"), expected.pop("content-length")
    assert shown == expected


def test_head_of_a_streamed_search_reads_no_further_than_its_first_chunk(
    client: TestClient, engine, feed_server: FeedServer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    client.app.state.search.reader.chunk_rows = 1  # type: ignore[attr-defined]
    get, head = client.get("/search"), client.head("/search")

    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["etag"] == get.headers["etag"]
    assert "content-length" not in head.headers and len(get.json()["data"]["events"]) == 3
