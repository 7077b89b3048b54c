"""GET /providers tells an operator what each provider is doing."""

import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from core.scheduling.context import build_context
from core.scheduling.job import run_fetch
from core.settings import Settings
from core.store.db import transaction
from core.store.models import FetchRun
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import wait_for
from tests.support.feed_server import Answer, FeedServer


@pytest.fixture
def fever_url(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> str:
    url = feed_server.url("/fever")
    monkeypatch.setenv("MARQUEE_FEVER_URL", url)
    return url


def fetch_fever(engine: Engine, trigger: str = "cli") -> None:
    """Fetch through the job, with the provider settings of the environment right now."""
    run_fetch(build_context(Settings(), engine=engine), "fever", trigger=trigger)


def fever_status(client: TestClient) -> dict[str, Any]:
    response = client.get("/providers")
    assert response.status_code == 200
    body = response.json()
    assert body["error"] is None
    [fever] = [p for p in body["data"]["providers"] if p["name"] == "fever"]
    return fever


def test_providers_lists_a_provider_that_never_ran(client: TestClient) -> None:
    fever = fever_status(client)

    assert fever["enabled"] is True
    assert fever["plugin"]["name"] == "fever"
    assert fever["plugin"]["distribution"] == "marquee-events"
    assert fever["interval_seconds"] == 60
    assert fever["last_run"] is None
    assert (fever["consecutive_failures"], fever["events_stored"]) == (0, 0)


def test_providers_shows_last_success_and_event_counts_after_a_fetch(
    fever_url: str, feed_server: FeedServer, client: TestClient, engine: Engine
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    fetch_fever(engine)

    fever = fever_status(client)

    assert fever["last_run"]["outcome"] == "success"
    assert fever["last_run"]["inserted"] == 3
    assert fever["last_success_at"] is not None
    assert fever["last_failure_at"] is None
    assert fever["consecutive_failures"] == 0
    assert fever["events_stored"] == 3
    assert fever["events_searchable"] == 3


def test_providers_shows_why_a_provider_is_failing_and_keeps_its_events(
    fever_url: str, feed_server: FeedServer, client: TestClient, engine: Engine
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    fetch_fever(engine)
    feed_server.serve("/fever", Answer(b"nope", status=404))
    fetch_fever(engine)
    fetch_fever(engine)

    fever = fever_status(client)

    assert fever["last_run"]["outcome"] == "failed"
    assert "HTTP 404" in fever["last_failure_error"]
    assert fever["last_failure_at"] >= fever["last_success_at"]
    assert fever["consecutive_failures"] == 2
    assert fever["events_stored"] == 3


def test_providers_shows_until_when_the_provider_asked_us_to_wait(
    fever_url: str, feed_server: FeedServer, client: TestClient, engine: Engine
) -> None:
    feed_server.serve("/fever", Answer(b"slow down", status=429, headers={"Retry-After": "120"}))
    fetch_fever(engine, trigger="schedule")
    fetch_fever(engine, trigger="schedule")

    fever = fever_status(client)

    assert fever["not_before"] is not None
    not_before = datetime.fromisoformat(fever["not_before"])
    assert datetime.now(UTC) + timedelta(seconds=100) < not_before
    assert fever["last_run"]["outcome"] == "skipped"
    assert fever["last_run"]["error"].startswith("provider asked us to wait until")
    assert "HTTP 429" in fever["last_failure_error"]
    assert feed_server.hits("/fever") == 1


def test_providers_counts_a_run_abandoned_by_a_stopped_process_as_a_failure(
    fever_url: str, feed_server: FeedServer, client: TestClient, engine: Engine
) -> None:
    with transaction(engine) as session:
        session.add(
            FetchRun(
                provider="fever",
                trigger="embedded",
                # Older than MARQUEE_LOCK_TIMEOUT_SECONDS (900): no live run can be.
                started_at=datetime.now(UTC) - timedelta(minutes=20),
                outcome="running",
            )
        )
    feed_server.serve("/fever", Answer(b"nope", status=404))
    fetch_fever(engine)

    fever = fever_status(client)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
    }

    assert fever["last_run"]["outcome"] == "failed"
    assert fever["consecutive_failures"] == 2
    labels = (("outcome", "failed"), ("provider", "fever"))
    assert samples[("marquee_fetch_runs_total", labels)] == 2
    assert samples.get(("marquee_fetch_runs_in_progress", (("provider", "fever"),)), 0) == 0


def test_providers_shows_who_holds_the_lock_while_a_run_is_in_flight(
    fever_url: str, feed_server: FeedServer, client: TestClient, engine: Engine
) -> None:
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=2.0))
    slow = threading.Thread(target=fetch_fever, args=(engine,))
    slow.start()
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=10, what="the slow download")

    held = fever_status(client)["lock"]
    skipped = run_fetch(build_context(Settings(), engine=engine), "fever", trigger="cli")
    slow.join(timeout=30)
    after = fever_status(client)

    assert held["holder"] == f"{socket.gethostname()}:{os.getpid()}"
    assert held["trigger"] == "cli" and held["lease_expired"] is False
    since, expires = (datetime.fromisoformat(held[key]) for key in ("since", "lease_expires_at"))
    assert since < datetime.now(UTC) < expires <= since + timedelta(seconds=31)
    # The skip says who held the lock, in its record and in /providers.
    assert skipped.error is not None and held["run_id"] in skipped.error
    assert after["lock"] is None
    assert after["last_run"]["outcome"] == "skipped"
    assert after["last_run"]["reason"] == "lock_held"
    assert after["last_success_at"] is not None
