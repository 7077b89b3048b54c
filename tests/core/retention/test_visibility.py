"""What retention does shows where users and operators look: hidden events are served by neither
/search nor /events/{id} (a cached answer included), and /providers and /metrics count events per
state and what the passes moved."""

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from tests.api.test_events import assert_error_envelope
from tests.core.retention.helpers import (
    age_absent,
    archive_files,
    event_id,
    feed,
    fetch,
    moved,
    retain,
)
from tests.support.feed_server import FeedServer


def search_ids(client: TestClient) -> tuple[set[str], str]:
    response = client.get("/search")
    assert response.status_code == 200, response.text
    return {event["id"] for event in response.json()["data"]["events"]}, response.headers["etag"]


def metric(client: TestClient, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    }


def fever(client: TestClient) -> dict:
    response = client.get("/providers")
    assert response.status_code == 200
    [entry] = [p for p in response.json()["data"]["providers"] if p["name"] == "fever"]
    return entry


@pytest.fixture
def states(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    """Show 1 active, 2 and 3 hidden, 4 archived."""
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "2")
    monkeypatch.setenv("MARQUEE_RETENTION_PURGE_AFTER_DAYS", "90")
    fetch(monkeypatch, engine, feed_server, feed(1, 2, 3, 4))
    fetch(monkeypatch, engine, feed_server, feed(1))
    age_absent(engine, 3, 4)


def test_a_hidden_event_is_served_neither_by_search_nor_by_id(
    states: None, engine: Engine, api: Callable[[], TestClient]
) -> None:
    client = api()
    assert client.get(f"/events/{event_id(2)}").status_code == 200

    retain(engine)

    found, _ = search_ids(client)
    assert found == {str(event_id(1))}
    for gone in (2, 4):  # hidden, archived
        message = assert_error_envelope(client.get(f"/events/{event_id(gone)}"), 404, "not_found")
        assert str(event_id(gone)) in message
    assert client.get(f"/events/{event_id(1)}").status_code == 200


def test_a_cached_search_answer_does_not_outlive_a_retention_pass(
    states: None, engine: Engine, api: Callable[[], TestClient]
) -> None:
    client = api()
    first, etag = search_ids(client)
    again, same_etag = search_ids(client)  # served from the cache: nothing changed
    assert first == again == {str(event_id(n)) for n in (1, 2, 3, 4)}
    assert same_etag == etag

    assert moved(retain(engine)["fever"]) == (3, 1, 0)

    after, new_etag = search_ids(client)
    assert after == {str(event_id(1))}
    assert new_etag != etag
    assert client.get("/search", headers={"If-None-Match": etag}).status_code == 200


def test_a_dry_run_leaves_the_cached_answer_current(
    states: None, engine: Engine, api: Callable[[], TestClient]
) -> None:
    client = api()
    _, etag = search_ids(client)

    retain(engine, dry_run=True)

    assert client.get("/search", headers={"If-None-Match": etag}).status_code == 304


def test_providers_shows_events_per_state_and_the_last_pass(
    states: None, engine: Engine, api: Callable[[], TestClient], archive_dir: Path
) -> None:
    client = api()
    before = fever(client)["retention"]
    assert before["events"] == {"active": 4, "hidden": 0, "archived": 0}
    assert before["last_run"] is None
    assert before["policy"] == {
        "hide_after_days": 0,
        "archive_after_days": 2,
        "purge_after_days": 90,
    }

    retain(engine)

    retention = fever(client)["retention"]
    assert retention["events"] == {"active": 1, "hidden": 2, "archived": 1}
    last = retention["last_run"]
    [path] = archive_files(archive_dir)
    assert (last["trigger"], last["outcome"], last["error"]) == ("cli", "success", None)
    assert (last["hidden"], last["archived"], last["purged"]) == (3, 1, 0)
    assert last["archive_file"] == str(path)
    assert last["finished_at"] >= last["started_at"]


def test_providers_shows_a_failed_pass(
    states: None,
    engine: Engine,
    api: Callable[[], TestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("MARQUEE_ARCHIVE_DIR", str(tmp_path / "file" / "archive"))

    [result] = retain(engine).values()

    assert result.failed
    last = fever(api())["retention"]["last_run"]
    assert last["outcome"] == "failed"
    assert "cannot write archive" in last["error"]
    assert last["archive_file"] is None


def test_a_failed_pass_still_counts_what_it_moved_before_failing(
    states: None,
    engine: Engine,
    api: Callable[[], TestClient],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "file").write_text("in the way")
    monkeypatch.setenv("MARQUEE_ARCHIVE_DIR", str(tmp_path / "file" / "archive"))

    [result] = retain(engine).values()

    assert result.failed
    assert result.counts.hidden == 3  # the hide stage ran (and committed) before archive failed
    assert fever(api())["retention"]["last_run"]["hidden"] == 3


def test_metrics_count_events_by_state_and_what_passes_moved(
    states: None, engine: Engine, api: Callable[[], TestClient]
) -> None:
    client = api()
    assert metric(client, "marquee_events_by_state") == {
        (("provider", "fever"), ("state", "active")): 4,
        (("provider", "fever"), ("state", "hidden")): 0,
        (("provider", "fever"), ("state", "archived")): 0,
    }

    retain(engine)
    age_absent(engine, 100, 3)
    retain(engine)  # 3: archived and purged by this second pass

    assert metric(client, "marquee_events_by_state") == {
        (("provider", "fever"), ("state", "active")): 1,
        (("provider", "fever"), ("state", "hidden")): 1,
        (("provider", "fever"), ("state", "archived")): 1,
    }
    assert metric(client, "marquee_retention_events_total") == {
        (("provider", "fever"), ("stage", "hide")): 3,
        (("provider", "fever"), ("stage", "archive")): 2,
        (("provider", "fever"), ("stage", "purge")): 1,
    }
    assert metric(client, "marquee_retention_runs_total") == {
        (("outcome", "success"), ("provider", "fever")): 2,
    }
