"""Run locks that heal, across real processes: a killed worker's provider is fetched again within
its lease, a frozen run is shown and outlived, and without Redis only one process fetches."""

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.runs.records import ABANDONED, LOCK_HELD
from core.scheduling.celery_app import create_celery_app
from core.scheduling.schedule import TASK_FETCH_PROVIDER
from core.settings import Settings
from core.store.models import Event
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import recorded, run_command, start_command, wait_for
from tests.support.feed_server import Answer, FeedServer

LEASE = 3.0


def fever(client: TestClient) -> dict[str, Any]:
    [status] = [
        p for p in client.get("/providers").json()["data"]["providers"] if p["name"] == "fever"
    ]
    return status


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
    }


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_killed_worker_provider_is_fetched_again_within_its_lease(
    start_worker,
    redis_env: dict[str, str],
    database_url: str,
    feed_server: FeedServer,
    client: TestClient,
    engine: Engine,
) -> None:
    env = {
        **redis_env,
        "DATABASE_URL": database_url,
        "MARQUEE_FEVER_URL": feed_server.url("/fever"),
        "MARQUEE_FEVER_INTERVAL_SECONDS": "60",
        "MARQUEE_LEASE_SECONDS": str(LEASE),
    }
    feed_server.serve(
        "/fever",
        Answer(fixture_bytes("fever", "response_1.xml"), delay=60),  # holds the first fetch
        fixture_bytes("fever", "response_1.xml"),
    )
    doomed = start_worker(env)
    sender = create_celery_app(Settings())
    sender.send_task(TASK_FETCH_PROVIDER, args=["fever"], kwargs={"trigger": "schedule"})
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=30, what="the first fetch")
    held = wait_for(lambda: fever(client)["lock"], timeout=10, what="the lock in /providers")

    assert held["holder"].endswith(f":{doomed.process.pid}")  # type: ignore[index]
    assert held["lease_expired"] is False  # type: ignore[index]
    start_worker(env)  # a fleet's other worker
    doomed.process.kill()
    doomed.process.wait()
    # The next scheduled run comes at once, while the dead worker's lease still runs.
    sent_at = time.monotonic()
    sender.send_task(TASK_FETCH_PROVIDER, args=["fever"], kwargs={"trigger": "schedule"})
    wait_for(
        lambda: any(run.outcome == "success" for run in recorded(engine)),
        timeout=LEASE + 20,
        what="the provider to be fetched again",
    )

    # It skipped, looked in on the silent holder, and fetched as soon as the lease lapsed.
    assert time.monotonic() - sent_at < LEASE + 2
    runs = [(run.outcome, run.reason, run.error) for run in recorded(engine)]
    assert runs[0] == ("failed", "abandoned", ABANDONED)
    assert runs[1][:2] == ("skipped", "lock_held")
    assert runs[1][2].startswith(LOCK_HELD) and f":{doomed.process.pid}," in runs[1][2]
    assert runs[2:] == [("success", None, None)]
    status = fever(client)
    assert status["lock"] is None and status["events_stored"] == 3
    metrics = samples(client)
    assert (
        metrics[("marquee_fetch_skips_total", (("provider", "fever"), ("reason", "lock_held")))]
        == 1
    )
    assert (
        metrics[("marquee_fetch_runs_total", (("outcome", "failed"), ("provider", "fever")))] == 1
    )


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
def test_frozen_fetch_shows_a_lapsed_lease_and_writes_nothing_after_another_run_took_over(
    redis_env: dict[str, str],
    database_url: str,
    feed_server: FeedServer,
    client: TestClient,
    engine: Engine,
    tmp_path: Path,
) -> None:
    env = {
        **redis_env,
        "DATABASE_URL": database_url,
        "MARQUEE_FEVER_URL": feed_server.url("/fever"),
        "MARQUEE_LEASE_SECONDS": str(LEASE),
    }
    feed_server.serve(
        "/fever",
        Answer(fixture_bytes("fever", "response_1.xml"), delay=1.0),
        fixture_bytes("fever", "response_2.xml"),
    )
    frozen = start_command(["fetch", "fever"], env, tmp_path / "frozen.log")
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=30, what="the first download")
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        lapsed = wait_for(
            lambda: (fever(client)["lock"] or {}).get("lease_expired"),
            timeout=LEASE + 10,
            what="the frozen run's lease to lapse",
        )
        assert lapsed is True
        newer = run_command(["fetch", "fever"], env, tmp_path)
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert newer.returncode == 0, newer.stderr
    assert frozen.wait(timeout=30) == 1
    output = (tmp_path / "frozen.log").read_text()

    assert "fetch of fever failed: lease lost" in output and "Traceback" not in output
    runs = [(run.outcome, run.reason) for run in recorded(engine)]
    assert runs == [("failed", "abandoned"), ("success", None)]
    # The frozen run's older feed (with Pantomima Full) never reached the database.
    with Session(engine) as session:
        assert set(session.exec(select(Event.title))) == {"Camela en concierto", "Los Morancos"}
    assert fever(client)["consecutive_failures"] == 0


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
def test_fetch_beside_a_fetching_marquee_run_is_skipped_without_redis_and_counts_stay_right(
    marquee_run, database_url: str, feed_server: FeedServer, engine: Engine, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "MARQUEE_FEVER_URL": feed_server.url("/fever")}
    # Long enough for a second `marquee` process to start and try while this one downloads.
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=10.0))
    base, _ = marquee_run(env)
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=30, what="the scheduled fetch")

    beside = run_command(["fetch", "fever"], env, tmp_path)
    wait_for(
        lambda: any(run.outcome == "success" for run in recorded(engine)),
        timeout=30,
        what="the scheduled fetch to finish",
    )

    assert beside.returncode == 1
    assert f"fetch of fever skipped: {LOCK_HELD} (run " in beside.stderr
    assert "Traceback" not in beside.stderr
    assert feed_server.hits("/fever") == 1
    runs = sorted((run.trigger, run.outcome, run.reason, run.inserted) for run in recorded(engine))
    assert runs == [("cli", "skipped", "lock_held", 0), ("embedded", "success", None, 3)]
    status = next(
        p
        for p in httpx.get(f"{base}/providers").json()["data"]["providers"]
        if p["name"] == "fever"
    )
    assert (status["last_run"]["outcome"], status["last_run"]["reason"]) == ("skipped", "lock_held")
    assert status["last_success_at"] is not None and status["events_stored"] == 3


@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
def test_two_fetch_commands_at_once_fetch_once_without_redis(
    database_url: str, feed_server: FeedServer, engine: Engine, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "MARQUEE_FEVER_URL": feed_server.url("/fever")}
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=10.0))
    first = start_command(["fetch", "fever"], env, tmp_path / "first.log")
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=30, what="the first download")

    second = run_command(["fetch", "fever"], env, tmp_path)

    assert first.wait(timeout=30) == 0
    assert (tmp_path / "first.log").read_text().count("fever: 3 inserted, 0 updated") == 1
    assert second.returncode == 1 and "fetch of fever skipped" in second.stderr
    assert feed_server.hits("/fever") == 1
    runs = sorted((run.outcome, run.inserted, run.unchanged) for run in recorded(engine))
    assert runs == [("skipped", 0, 0), ("success", 3, 0)]
