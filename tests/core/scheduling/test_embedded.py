"""`marquee run`: the API plus an in-process scheduler, on SQLite, with no Redis."""

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.scheduling.context import build_context
from core.scheduling.embedded import EmbeddedScheduler
from core.settings import Settings
from core.store.models import FetchRun
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import wait_for
from tests.support.feed_server import Answer, FeedServer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_marquee_run_fetches_at_start_and_again_every_interval(
    marquee_run, database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    base, log = marquee_run(
        {
            "DATABASE_URL": database_url,
            "MARQUEE_FEVER_URL": url,
            "MARQUEE_FEVER_INTERVAL_SECONDS": "10",
        }
    )
    # Logged before the port opens, so it is there as soon as the API answers.
    assert "embedded scheduler started" in log.read_text()

    events = wait_for(
        lambda: httpx.get(f"{base}/search").json()["data"]["events"],
        timeout=30,
        what="events fetched by the embedded scheduler",
    )
    assert len(events) == 3  # type: ignore[arg-type]
    wait_for(lambda: feed_server.hits("/fever") >= 2, timeout=40, what="the second fetch")
    fever = next(
        p
        for p in httpx.get(f"{base}/providers").json()["data"]["providers"]
        if p["name"] == "fever"
    )
    assert fever["last_run"]["trigger"] == "embedded"


def test_marquee_run_leaves_scheduling_to_celery_when_redis_is_set(
    marquee_run, database_url: str, feed_server: FeedServer, redis_env: dict[str, str]
) -> None:
    url = feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))

    _, log = marquee_run({**redis_env, "DATABASE_URL": database_url, "MARQUEE_FEVER_URL": url})

    output = log.read_text()
    assert "Celery beat and workers schedule fetches" in output
    # The scheduler logs its start before the port opens: had it started, the line would be here.
    assert "embedded scheduler started" not in output
    assert feed_server.hits("/fever") == 0


def test_embedded_scheduler_retries_a_transient_failure_in_process(
    settings: Settings, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "MARQUEE_FEVER_URL",
        feed_server.serve(
            "/fever", Answer(b"busy", status=503), fixture_bytes("fever", "response_1.xml")
        ),
    )
    monkeypatch.setenv("MARQUEE_RETRY_BACKOFF_SECONDS", "0.2")
    scheduler = EmbeddedScheduler(build_context(Settings(), engine=engine)).start()
    try:
        wait_for(lambda: feed_server.hits("/fever") >= 2, timeout=20, what="the retry")
        wait_for(lambda: len(attempts(engine)) >= 2, timeout=20, what="the retry's record")
    finally:
        scheduler.stop()

    assert attempts(engine)[:2] == [("embedded", 1, "retrying"), ("embedded", 2, "success")]


def attempts(engine: Engine) -> list[tuple[str, int, str]]:
    with Session(engine) as session:
        runs = session.exec(select(FetchRun).order_by(col(FetchRun.started_at)))
        return [(run.trigger, run.attempt, run.outcome) for run in runs if run.outcome != "running"]
