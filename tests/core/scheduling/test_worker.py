"""A real `marquee worker` on Redis and PostgreSQL runs the fetch task the way beat would send it."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.scheduling.celery_app import create_celery_app
from core.scheduling.schedule import TASK_FETCH_PROVIDER
from core.settings import Settings
from core.store.models import Event, FetchRun
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import wait_for
from tests.support.feed_server import Answer, FeedServer

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
TASK_TIMEOUT = 40


@pytest.fixture
def worker_env(
    database_url: str, redis_env: dict[str, str], feed_server: FeedServer
) -> dict[str, str]:
    return {
        **redis_env,
        "DATABASE_URL": database_url,
        "MARQUEE_PROVIDERS": "fever",
        "MARQUEE_FEVER_URL": feed_server.url("/fever"),
        "MARQUEE_FEVER_INTERVAL_SECONDS": "60",
        "MARQUEE_RETRY_BACKOFF_SECONDS": "0.5",
        "MARQUEE_RETRY_MAX_ATTEMPTS": "4",
    }


def send_fetch(settings: Settings):  # type: ignore[no-untyped-def]
    sender = create_celery_app(settings)
    return sender.send_task(TASK_FETCH_PROVIDER, args=["fever"], kwargs={"trigger": "schedule"})


def runs(engine: Engine) -> list[FetchRun]:
    with Session(engine) as session:
        return list(session.exec(select(FetchRun).order_by(col(FetchRun.started_at))))


def test_worker_fetches_provider_and_its_events_appear_in_search(
    start_worker, worker_env, feed_server: FeedServer, client: TestClient, engine: Engine
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    start_worker(worker_env)

    outcome = send_fetch(Settings()).get(timeout=TASK_TIMEOUT)

    assert outcome["outcome"] == "success"
    assert outcome["report"]["inserted"] == 3
    titles = {event["title"] for event in client.get("/search").json()["data"]["events"]}
    assert titles == {"Camela en concierto", "Pantomima Full", "Los Morancos"}
    assert [(run.trigger, run.outcome) for run in runs(engine)] == [("schedule", "success")]


def test_worker_retries_transient_failures_with_growing_delays_then_succeeds(
    start_worker, worker_env, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.serve(
        "/fever",
        Answer(b"busy", status=503),
        Answer(b"busy", status=503),
        Answer(fixture_bytes("fever", "response_1.xml")),
    )
    start_worker(worker_env)

    outcome = send_fetch(Settings()).get(timeout=TASK_TIMEOUT)

    assert outcome["outcome"] == "success"
    assert outcome["attempt"] == 3
    recorded = [(run.attempt, run.outcome) for run in runs(engine)]
    assert recorded == [(1, "retrying"), (2, "retrying"), (3, "success")]
    times = [at for path, at in feed_server.requests if path == "/fever"]
    assert len(times) == 3
    first_wait, second_wait = times[1] - times[0], times[2] - times[1]
    # Backoff 0.5s: the first wait is 0.375-0.5s, the second 0.75-1s.
    assert first_wait >= 0.375
    assert second_wait > first_wait


def test_worker_records_permanent_failure_without_retrying(
    start_worker, worker_env, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.serve("/fever", Answer(b"gone", status=410))
    start_worker(worker_env)

    outcome = send_fetch(Settings()).get(timeout=TASK_TIMEOUT)

    assert outcome["outcome"] == "failed"
    assert "HTTP 410" in outcome["error"]
    assert feed_server.hits("/fever") == 1
    assert [(run.attempt, run.outcome) for run in runs(engine)] == [(1, "failed")]


def test_worker_runs_one_of_two_concurrent_fetches_and_skips_the_other(
    start_worker, worker_env, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=2.0))
    start_worker(worker_env)
    settings = Settings()

    first = send_fetch(settings)
    wait_for(lambda: feed_server.hits("/fever") >= 1, timeout=TASK_TIMEOUT, what="first fetch")
    second = send_fetch(settings)
    outcomes = sorted(result.get(timeout=TASK_TIMEOUT)["outcome"] for result in (first, second))

    assert outcomes == ["skipped", "success"]
    assert feed_server.hits("/fever") == 1
    with Session(engine) as session:
        assert len(session.exec(select(Event)).all()) == 3
    assert sorted(run.outcome for run in runs(engine)) == ["skipped", "success"]


def test_beat_and_worker_keep_the_database_fresh_by_themselves(
    start_worker, start_beat, worker_env, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    start_worker(worker_env)

    start_beat(worker_env)

    wait_for(
        lambda: [run for run in runs(engine) if run.outcome == "success"],
        timeout=TASK_TIMEOUT,
        what="a scheduled fetch",
    )
    assert runs(engine)[0].trigger == "schedule"
    with Session(engine) as session:
        assert len(session.exec(select(Event)).all()) == 3
