"""The response cache is never wrong: keyed by the instants and providers searched, retired on every
replica as soon as a fetch commits a change (within the data version check interval), with ETag,
304 and a Cache-Control that says the same interval."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.cache import Entry, ResponseCache
from core.plugins.registry import load_registry
from core.settings import Settings
from core.store.db import create_db_engine
from core.store.reader import SearchKey
from tests.providers.fever.feeds import fetch_fever, fever_body
from tests.support.events import event, store
from tests.support.feed_server import FeedServer

INTERVAL = 0.3
JUNE = "starts_at=2021-06-01T00:00:00Z&ends_at=2021-06-30T23:59:59Z"
JUNE_IN_MADRID = "starts_at=2021-06-01T02:00:00%2B02:00&ends_at=2021-07-01T01:59:59%2B02:00"
AUGUST = "starts_at=2021-08-01T00:00:00Z&ends_at=2021-08-31T23:59:59Z"


@pytest.fixture
def replicas(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[TestClient]]:
    """Two API processes' apps on one database, each with its own engine, pool and cache."""
    monkeypatch.setenv("MARQUEE_DATA_VERSION_CHECK_SECONDS", str(INTERVAL))
    clients, engines = [], []
    for _ in range(2):
        own = Settings()
        engines.append(create_db_engine(own))
        app = create_app(own, engine=engines[-1], registry=load_registry(own))
        clients.append(TestClient(app, raise_server_exceptions=False).__enter__())
    yield clients
    for client in clients:
        client.__exit__(None, None, None)
    for engine in engines:
        engine.dispose()


def titles_and_prices(client: TestClient, query: str = "") -> list[tuple[str, float]]:
    response = client.get(f"/search?{query}")
    assert response.status_code == 200, response.text
    return [(e["title"], e["max_price"]) for e in response.json()["data"]["events"]]


def test_a_changed_feed_changes_the_next_answer_on_every_replica(
    replicas: list[TestClient],
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    before = [client.get("/search").content for client in replicas]
    assert before[0] == before[1] and b"21:00:00" in before[0]
    # Both now hold the answer in their caches.
    assert [len(c.app.state.search.cache) for c in replicas] == [1, 1]  # type: ignore[attr-defined]

    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_2.xml"))
    time.sleep(INTERVAL * 1.5)

    # Los Morancos now ends at 21:20.
    after = [client.get("/search").content for client in replicas]
    assert after[0] == after[1]
    assert after[0] == before[0].replace(b'"end_time":"21:00:00"', b'"end_time":"21:20:00"')


def test_an_unchanged_refetch_keeps_the_cached_answer(
    replicas: list[TestClient],
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    first = replicas[0].get("/search")
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    time.sleep(INTERVAL * 1.5)

    second = replicas[0].get("/search", headers={"If-None-Match": first.headers["etag"]})

    assert second.status_code == 304


def test_distinct_windows_never_share_an_entry(replicas: list[TestClient], engine: Engine) -> None:
    client = replicas[0]
    store(
        engine,
        [
            event("june", datetime(2021, 6, 10, 20), datetime(2021, 6, 10, 22), title="June show"),
            event("aug", datetime(2021, 8, 10, 20), datetime(2021, 8, 10, 22), title="August show"),
        ],
    )
    for _ in range(2):  # the second round is answered from the cache
        assert titles_and_prices(client, JUNE) == [("June show", 20.0)]
        assert titles_and_prices(client, AUGUST) == [("August show", 20.0)]
        assert [t for t, _ in titles_and_prices(client)] == ["June show", "August show"]
    # The same instants written another way are the same search, and share its entry.
    assert titles_and_prices(client, JUNE_IN_MADRID) == [("June show", 20.0)]
    assert len(client.app.state.search.cache) == 3  # type: ignore[attr-defined]
    etag = client.get(f"/search?{JUNE}").headers["etag"]
    assert client.get(f"/search?{JUNE_IN_MADRID}").headers["etag"] == etag
    assert client.get(f"/search?{AUGUST}").headers["etag"] != etag


def test_providers_searched_are_part_of_the_key(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_ICAL_FEEDS", "venue")
    monkeypatch.setenv("MARQUEE_VENUE_URL", "http://127.0.0.1:9/venue.ics")
    monkeypatch.setenv("MARQUEE_PROVIDERS", "fever,venue")
    own = Settings()
    store(engine, [event("f", datetime(2021, 6, 10, 20), title="Fever show")])
    store(engine, [event("v", datetime(2021, 6, 11, 20), title="Venue show")], provider="venue")
    app = create_app(own, engine=engine, registry=load_registry(own))
    with TestClient(app) as client:
        for _ in range(2):
            assert [t for t, _ in titles_and_prices(client, "provider=fever")] == ["Fever show"]
            assert [t for t, _ in titles_and_prices(client, "provider=venue")] == ["Venue show"]
            both = titles_and_prices(client, "provider=venue&provider=fever")
            assert [t for t, _ in both] == ["Fever show", "Venue show"]
            assert titles_and_prices(client) == both
        # Every enabled provider, named or not, in any order, is one search.
        assert len(client.app.state.search.cache) == 3  # type: ignore[attr-defined]


def test_a_matching_etag_answers_304_until_the_data_changes(
    replicas: list[TestClient],
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = replicas[1]
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    first = client.get("/search")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=0"  # the interval, in whole seconds

    again = client.get("/search", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert client.get("/search", headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304

    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_2.xml"))
    time.sleep(INTERVAL * 1.5)
    changed = client.get("/search", headers={"If-None-Match": etag})

    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.content != first.content


def test_cache_control_matches_the_default_check_interval(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MARQUEE_DATA_VERSION_CHECK_SECONDS")
    own = Settings()
    with TestClient(create_app(own, engine=engine, registry=load_registry(own))) as client:
        response = client.get("/search")
    assert response.headers["cache-control"] == "public, max-age=1"
    assert response.headers["etag"].startswith('"')


def key(n: int) -> SearchKey:
    return SearchKey(datetime(2021, 1, 1, n, tzinfo=UTC), None, ("fever",))


def test_cache_is_bounded_in_entries_and_bytes_and_keeps_no_huge_answer() -> None:
    cache = ResponseCache(max_entries=3, max_bytes=1600)
    for n in range(5):
        cache.put(key(n), Entry(1, b"x" * 10, f"e{n}"))
    assert len(cache) == 3 and cache.get(key(0), 1) is None and cache.get(key(4), 1) is not None

    cache.put(key(10), Entry(1, b"x" * 101, "huge"))  # over a sixteenth of the byte budget
    assert cache.get(key(10), 1) is None

    for n in range(20, 23):
        cache.put(key(n), Entry(1, b"x" * 100, f"e{n}"))
    assert cache.bytes <= 1600
    # An entry read at another data version is dropped, not served.
    assert cache.get(key(22), 2) is None and cache.get(key(22), 1) is None
