"""The three sample responses fed in order through the real fetch path, then read through /search."""

import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.ingest.normalise import event_uuid
from tests.providers.fever.feeds import counts, fetch_fever, fever_body, stored_rows
from tests.support.feed_server import FeedServer
from tests.support.spec import assert_matches_spec

# Pinned: the public id must never change across refetches, restarts, machines or databases.
ID_291 = "2fb4b80a-2718-5c33-b6d0-0ba0d04be9bd"
ID_322 = str(event_uuid("fever", "322/1642"))
ID_1591 = str(event_uuid("fever", "1591/1642"))


def search(client: TestClient, **params: str) -> list[dict]:
    response = client.get("/search", params=params)
    assert_matches_spec("/search", 200, response.json())
    assert response.status_code == 200
    return response.json()["data"]["events"]


def test_event_ids_are_pinned_uuids_derived_from_provider_base_and_event() -> None:
    assert str(event_uuid("fever", "291/291")) == ID_291
    assert uuid.UUID(ID_322).version == 5
    assert len({ID_291, ID_322, ID_1591}) == 3


def test_fetch_sequence_serves_latest_values_of_291_322_1591_and_never_444(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    first = fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    second = fetch_fever(monkeypatch, engine, feed_server, fever_body("response_2.xml"))
    third = fetch_fever(monkeypatch, engine, feed_server, fever_body("response_3.xml"))

    assert counts(first) == (3, 0, 0, 0)
    # 1591 ends at 21:20 instead of 21:00; 291 is unchanged (capacities are not served); 444 skipped.
    assert counts(second) == (0, 1, 1, 1)
    # 291 now ends at 21:30; 1591 back to 21:00.
    assert counts(third) == (0, 2, 0, 1)
    assert second.skip_reasons and second.skip_reasons[0].startswith("444/1642")

    assert search(client) == [
        {
            "id": ID_322,
            "title": "Pantomima Full",
            "start_date": "2021-02-10",
            "start_time": "20:00:00",
            "end_date": "2021-02-10",
            "end_time": "21:30:00",
            "min_price": 55.0,
            "max_price": 55.0,
        },
        {
            "id": ID_291,
            "title": "Camela en concierto",
            "start_date": "2021-06-30",
            "start_time": "21:00:00",
            "end_date": "2021-06-30",
            "end_time": "21:30:00",
            "min_price": 15.0,
            "max_price": 30.0,
        },
        {
            "id": ID_1591,
            "title": "Los Morancos",
            "start_date": "2021-07-31",
            "start_time": "20:00:00",
            "end_date": "2021-07-31",
            "end_time": "21:00:00",
            "min_price": 65.0,
            "max_price": 75.0,
        },
    ]
    assert "444/1642" not in stored_rows(engine)


def test_refetch_of_unchanged_feed_reports_all_unchanged_and_rewrites_no_row(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    before, versions = stored_rows(engine), row_versions(engine)

    again = fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))

    assert counts(again) == (0, 0, 3, 0)
    assert stored_rows(engine) == before
    assert row_versions(engine) == versions


def row_versions(engine: Engine) -> list[str]:
    """PostgreSQL's xmin changes whenever a row is rewritten, even with identical values."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        return list(
            connection.execute(sa.text("SELECT xmin::text FROM event ORDER BY id")).scalars()
        )


def test_refetch_moves_updated_at_only_for_the_event_that_changed(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    before = stored_rows(engine)

    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_2.xml"))
    after = stored_rows(engine)

    assert after["291/291"]["updated_at"] == before["291/291"]["updated_at"]
    # 322 left the feed: its values stay as they were, and its last sighting is recorded: the
    # first fetch, whose time is its first_seen_at (retention ages it from there).
    gone, was = dict(after["322/1642"]), dict(before["322/1642"])
    assert was.pop("last_seen_at") is None
    assert gone.pop("last_seen_at") == was["first_seen_at"]
    assert gone == was
    assert after["1591/1642"]["updated_at"] > before["1591/1642"]["updated_at"]
    assert after["1591/1642"]["first_seen_at"] == before["1591/1642"]["first_seen_at"]


def test_fetch_stores_same_ids_on_every_database_and_refetch(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))

    rows = stored_rows(engine)
    assert str(rows["291/291"]["id"]) == ID_291
    assert {event["id"] for event in search(client)} == {ID_291, ID_322, ID_1591}
    assert client.get(f"/events/{ID_291}").json()["data"]["event"]["title"] == (
        "Camela en concierto"
    )


def test_fetch_of_plan_list_serves_both_plans_of_322(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    report = fetch_fever(monkeypatch, engine, feed_server, fever_body("planlist_response_1.xml"))

    assert counts(report) == (4, 0, 0, 0)
    pantomima = [event for event in search(client) if event["title"] == "Pantomima Full"]
    assert [(e["start_date"], e["end_time"]) for e in pantomima] == [
        ("2021-02-10", "21:30:00"),
        ("2021-02-11", "21:30:00"),
    ]
    assert pantomima[0]["id"] == ID_322
    assert pantomima[1]["id"] == str(event_uuid("fever", "322/1643"))


def test_fetch_of_no_zone_event_serves_null_prices(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("no_zones.xml"))

    [event] = search(client)
    assert (event["min_price"], event["max_price"]) == (None, None)
    assert (event["end_date"], event["end_time"]) == ("2021-08-02", "00:00:00")


def test_fetch_counts_invalid_items_skipped_and_stores_the_rest(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    report = fetch_fever(monkeypatch, engine, feed_server, fever_body("invalid_items.xml"))

    assert counts(report) == (1, 0, 0, 3)
    assert sorted(stored_rows(engine)) == ["503/5031"]
