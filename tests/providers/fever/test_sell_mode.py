"""Searchable once ever seen online; kept, with its latest values, after going offline or vanishing."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.ingest.normalise import event_uuid
from tests.providers.fever.feeds import counts, fetch_fever, fever_body, stored_rows
from tests.support.feed_server import FeedServer
from tests.support.spec import assert_matches_spec

FLAMENCO = str(event_uuid("fever", "600/6001"))
REHEARSAL = str(event_uuid("fever", "700/7001"))


def searched(client: TestClient) -> dict[str, dict]:
    response = client.get("/search")
    assert_matches_spec("/search", 200, response.json())
    return {event["id"]: event for event in response.json()["data"]["events"]}


def test_offline_event_is_stored_but_never_searchable(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("flip_offline.xml"))

    assert set(stored_rows(engine)) == {"600/6001", "700/7001"}
    assert searched(client) == {}
    assert client.get(f"/events/{REHEARSAL}").status_code == 404


def test_event_turning_offline_stays_searchable_with_its_latest_values(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("flip_online.xml"))
    assert searched(client)[FLAMENCO]["min_price"] == 20.0

    report = fetch_fever(monkeypatch, engine, feed_server, fever_body("flip_offline.xml"))

    assert counts(report) == (0, 1, 1, 0)
    events = searched(client)
    assert set(events) == {FLAMENCO}
    assert events[FLAMENCO]["title"] == "Flamenco night (offline)"
    assert (events[FLAMENCO]["min_price"], events[FLAMENCO]["max_price"]) == (25.0, 25.0)
    assert stored_rows(engine)["600/6001"]["on_sale"] is False


def test_event_flipping_online_offline_online_stays_searchable_throughout(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    for name, price in [("flip_online", 20.0), ("flip_offline", 25.0), ("flip_online", 20.0)]:
        fetch_fever(monkeypatch, engine, feed_server, fever_body(f"{name}.xml"))
        events = searched(client)
        assert set(events) == {FLAMENCO}, name
        assert events[FLAMENCO]["min_price"] == price


def test_event_first_offline_then_online_becomes_searchable(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("flip_offline.xml"))
    fetch_fever(monkeypatch, engine, feed_server, fever_body("flip_online.xml"))

    assert searched(client)[FLAMENCO]["title"] == "Flamenco night (online)"


def test_event_vanishing_from_feed_stays_searchable_with_last_values(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_2.xml"))

    pantomima = searched(client)[str(event_uuid("fever", "322/1642"))]
    assert pantomima["title"] == "Pantomima Full"
    assert (pantomima["start_date"], pantomima["start_time"]) == ("2021-02-10", "20:00:00")
