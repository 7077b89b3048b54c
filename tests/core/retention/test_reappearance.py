"""An event back in its feed after being hidden or archived is served again: its old id, the feed's
new values, and on sale if it ever was."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.core.retention.helpers import (
    event_id,
    feed,
    fetch,
    hidden,
    moved,
    retain,
    rows,
    show,
    stored,
    tombstones,
)
from tests.support.feed_server import FeedServer


def served(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/search")
    assert response.status_code == 200, response.text
    return {event["id"]: event for event in response.json()["data"]["events"]}


def test_a_hidden_event_back_in_the_feed_is_served_with_its_new_values(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    api: Callable[[], TestClient],
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    client = api()
    fetch(monkeypatch, engine, feed_server, feed(1, show(2, title="Old", price=10)))
    fetch(monkeypatch, engine, feed_server, feed(1))
    assert moved(retain(engine)["fever"]) == (1, 0, 0)
    first_seen = rows(engine)[event_id(2)]["first_seen_at"]
    assert str(event_id(2)) not in served(client)

    fetch(monkeypatch, engine, feed_server, feed(1, show(2, title="New", price=25)))

    event = served(client)[str(event_id(2))]
    assert (event["title"], event["min_price"]) == ("New", 25.0)
    assert client.get(f"/events/{event_id(2)}").json()["data"]["event"]["title"] == "New"
    row = rows(engine)[event_id(2)]
    assert (row["hidden_at"], row["last_seen_at"], row["first_seen_at"]) == (None, None, first_seen)
    # Back in the latest feed: the next pass leaves it alone.
    assert moved(retain(engine)["fever"]) == (0, 0, 0)


def test_a_hidden_event_back_with_its_old_values_is_served_again(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    api: Callable[[], TestClient],
) -> None:
    """Nothing to update, only its presence changes: the cached answers must still go."""
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    client = api()
    fetch(monkeypatch, engine, feed_server, feed(1, 2))
    fetch(monkeypatch, engine, feed_server, feed(1))
    retain(engine)
    assert set(served(client)) == {str(event_id(1))}

    report = fetch(monkeypatch, engine, feed_server, feed(1, 2))

    assert (report.inserted, report.updated) == (0, 0)
    assert set(served(client)) == {str(event_id(1)), str(event_id(2))}


@pytest.mark.parametrize("stages", [("ARCHIVE",), ("HIDE", "ARCHIVE")])
def test_an_archived_event_that_was_on_sale_comes_back_off_sale_and_is_still_served(
    stages: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    api: Callable[[], TestClient],
    archive_dir: Path,
) -> None:
    for stage in stages:
        monkeypatch.setenv(f"MARQUEE_RETENTION_{stage}_AFTER_DAYS", "0")
    client = api()
    fetch(monkeypatch, engine, feed_server, feed(1, show(2, title="On sale", price=10)))
    fetch(monkeypatch, engine, feed_server, feed(1))
    assert moved(retain(engine)["fever"])[1] == 1
    assert event_id(2) not in stored(engine)
    assert tombstones(engine)[event_id(2)]["ever_on_sale"] is True

    report = fetch(
        monkeypatch,
        engine,
        feed_server,
        feed(1, show(2, title="Sold elsewhere now", price=30, online=False)),
    )

    assert report.inserted == 1
    row = rows(engine)[event_id(2)]
    assert (row["on_sale"], row["ever_on_sale"]) == (False, True)
    event = served(client)[str(event_id(2))]
    assert (event["title"], event["max_price"]) == ("Sold elsewhere now", 30.0)
    assert client.get(f"/events/{event_id(2)}").status_code == 200
    assert tombstones(engine) == {}  # taken back by the event
    assert hidden(engine) == set()


def test_an_archived_event_never_on_sale_comes_back_still_not_served(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    api: Callable[[], TestClient],
    archive_dir: Path,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "0")
    client = api()
    fetch(monkeypatch, engine, feed_server, feed(1, show(2, online=False)))
    fetch(monkeypatch, engine, feed_server, feed(1))
    retain(engine)
    assert tombstones(engine)[event_id(2)]["ever_on_sale"] is False

    fetch(monkeypatch, engine, feed_server, feed(1, show(2, online=False)))

    assert rows(engine)[event_id(2)]["ever_on_sale"] is False
    assert str(event_id(2)) not in served(client)
    assert client.get(f"/events/{event_id(2)}").status_code == 404
    assert tombstones(engine) == {}


def test_an_archived_event_back_in_the_feed_is_not_archived_again_by_the_next_pass(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "0")
    fetch(monkeypatch, engine, feed_server, feed(1, 2))
    fetch(monkeypatch, engine, feed_server, feed(1))
    retain(engine)
    fetch(monkeypatch, engine, feed_server, feed(1, 2))

    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert stored(engine) == {event_id(1), event_id(2)}
    assert rows(engine)[event_id(2)]["last_seen_at"] is None
