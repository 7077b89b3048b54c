"""The sample responses in order with MARQUEE_RETENTION_HIDE_AFTER_DAYS=0: only 322/1642, which
drops out after response_1, is hidden; serving response_1 again brings it back. An item still in
the feed but unreadable there is not hidden: it is in the feed all the same."""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.ingest.normalise import event_uuid
from tests.api.test_events import assert_error_envelope
from tests.core.retention.helpers import event_id, feed, fetch, hidden, moved, retain, rows, show
from tests.providers.fever.feeds import base_xml, event_xml, fever_body
from tests.support.feed_server import FeedServer

ID_291 = event_uuid("fever", "291/291")
ID_322 = event_uuid("fever", "322/1642")
ID_1591 = event_uuid("fever", "1591/1642")
ID_444 = event_uuid("fever", "444/1642")


def search_ids(client: TestClient) -> list[str]:
    response = client.get("/search")
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["data"]["events"]]


def test_the_sample_sequence_hides_only_322_and_response_1_brings_it_back(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    api: Callable[[], TestClient],
    archive_dir: Path,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    client = api()

    fetch(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert search_ids(client) == [str(ID_322), str(ID_291), str(ID_1591)]

    second = fetch(monkeypatch, engine, feed_server, fever_body("response_2.xml"))
    assert second.absent == 1
    assert second.skipped == 1 and second.skip_reasons[0].startswith("444/1642")
    assert moved(retain(engine)["fever"]) == (1, 0, 0)
    fetch(monkeypatch, engine, feed_server, fever_body("response_3.xml"))
    assert moved(retain(engine)["fever"]) == (0, 0, 0)

    assert hidden(engine) == {ID_322}
    assert ID_444 not in rows(engine)  # never readable, never stored
    assert search_ids(client) == [str(ID_291), str(ID_1591)]
    assert_error_envelope(client.get(f"/events/{ID_322}"), 404, "not_found")

    fetch(monkeypatch, engine, feed_server, fever_body("response_1.xml"))

    assert hidden(engine) == set()
    assert search_ids(client) == [str(ID_322), str(ID_291), str(ID_1591)]
    event = client.get(f"/events/{ID_322}").json()["data"]["event"]
    assert (event["title"], event["end_time"], event["min_price"]) == (
        "Pantomima Full",
        "21:30:00",
        55.0,
    )
    assert moved(retain(engine)["fever"]) == (0, 0, 0)


def test_an_event_still_in_the_feed_but_unreadable_there_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    api: Callable[[], TestClient],
    archive_dir: Path,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "0")
    client = api()
    fetch(monkeypatch, engine, feed_server, feed(1, show(2, title="Readable")))
    # Show 2 is still in the feed, but its date is now impossible (the 31st of September).
    unreadable = base_xml("2", event_xml("2", start="2021-09-31T20:00:00"), title="Broken")

    report = fetch(monkeypatch, engine, feed_server, feed(1, unreadable))

    assert report.skipped == 1 and report.absent == 0
    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert client.get(f"/events/{event_id(2)}").json()["data"]["event"]["title"] == "Readable"

    # Once it is gone from the feed for good, it is no longer spared.
    fetch(monkeypatch, engine, feed_server, feed(1))
    assert moved(retain(engine)["fever"]) == (1, 1, 0)
    assert_error_envelope(client.get(f"/events/{event_id(2)}"), 404, "not_found")
