"""`marquee run`'s embedded scheduler runs retention (at start, then every interval) when a stage is
set, and not at all when none is; stopping ends a pass at its next batch, recorded, not `running`."""

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

import core.scheduling.retention as retention_module
from core.retention.stages import Pass
from core.scheduling.context import build_context
from core.scheduling.embedded import EmbeddedScheduler
from core.scheduling.retention import STOPPED
from core.settings import Settings
from tests.core.scheduling.conftest import (
    free_port,
    recorded,
    start_command,
    stop_process,
    wait_for,
)
from tests.core.scheduling.retention_support import (
    ABSENT,
    hidden,
    retention_runs,
    seed_absent_event,
)
from tests.support.feed_server import FeedServer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def fever_url(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> str:
    url = feed_server.url("/fever")
    monkeypatch.setenv("MARQUEE_FEVER_URL", url)
    return url


def retention_thread_alive() -> bool:
    return any(thread.name == "marquee-retention" for thread in threading.enumerate())


def test_embedded_scheduler_runs_retention_at_start_when_a_stage_is_set(
    settings: Settings,
    engine: Engine,
    fever_url: str,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS", "0")  # one provider's override
    seed_absent_event(engine, feed_server)
    scheduler = EmbeddedScheduler(build_context(Settings(), engine=engine)).start()
    try:
        runs = wait_for(
            lambda: [run for run in retention_runs(engine) if run.outcome != "running"],
            timeout=30,
            what="the embedded retention pass",
        )
        assert retention_thread_alive()  # it waits for the next interval (a day)
    finally:
        scheduler.stop()

    assert [(r.provider, r.trigger, r.outcome, r.hidden) for r in runs] == [  # type: ignore[union-attr]
        ("fever", "embedded", "success", 1)
    ]
    assert hidden(engine)[ABSENT]
    assert not retention_thread_alive()


def test_embedded_scheduler_starts_no_retention_when_no_stage_is_set(
    settings: Settings,
    engine: Engine,
    fever_url: str,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_INTERVAL_SECONDS", "60")  # an interval is no policy
    seed_absent_event(engine, feed_server)
    scheduler = EmbeddedScheduler(build_context(Settings(), engine=engine))

    assert scheduler.retention is False
    scheduler.start()
    try:
        wait_for(
            lambda: [r for r in recorded(engine) if r.trigger == "embedded" and r.finished_at],
            timeout=30,
            what="the embedded fetch",
        )
        assert not retention_thread_alive()
    finally:
        scheduler.stop()

    assert retention_runs(engine) == []
    assert not hidden(engine)[ABSENT]


def test_stopping_the_scheduler_ends_a_pass_between_batches_and_records_it(
    settings: Settings,
    engine: Engine,
    fever_url: str,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_RETENTION_BATCH_SIZE", "1")
    seed_absent_event(engine, feed_server)
    in_pass = threading.Event()

    class LongPass(Pass):
        """After its first batch, the pass asks to go on until told to stop."""

        def __init__(self, *args, keep_going, **kwargs):  # type: ignore[no-untyped-def]
            calls: list[int] = []

            def gated() -> None:
                keep_going()
                if calls:
                    in_pass.set()
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        keep_going()  # raises once the scheduler stops
                        time.sleep(0.05)
                calls.append(1)

            super().__init__(*args, keep_going=gated, **kwargs)

    monkeypatch.setattr(retention_module, "Pass", LongPass)
    scheduler = EmbeddedScheduler(build_context(Settings(), engine=engine)).start()
    try:
        assert in_pass.wait(30), "the retention pass never reached its second batch"
    finally:
        started = time.monotonic()
        scheduler.stop()
    stopped_in = time.monotonic() - started

    assert stopped_in < 5
    [run] = retention_runs(engine)
    assert (run.trigger, run.outcome, run.error) == ("embedded", "failed", STOPPED)
    assert run.finished_at is not None
    assert hidden(engine)[ABSENT]  # the first batch's work stays


def test_marquee_run_hides_events_gone_from_the_feed(
    database_url: str,
    settings: Settings,
    engine: Engine,
    fever_url: str,
    feed_server: FeedServer,
    tmp_path: Path,
) -> None:
    seed_absent_event(engine, feed_server)
    env = {
        "DATABASE_URL": database_url,
        "MARQUEE_FEVER_URL": fever_url,
        "MARQUEE_RETENTION_HIDE_AFTER_DAYS": "0",
    }
    port, log = free_port(), tmp_path / "run.log"
    # One API worker: the test reads the API, not the process supervisor.
    process = start_command(["run", "--port", str(port), "--workers", "1"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: [r for r in retention_runs(engine) if r.outcome == "success"],
            timeout=60,
            what="retention in `marquee run`",
        )

        def providers() -> list[dict[str, Any]] | None:
            assert process.poll() is None, log.read_text()
            try:
                answer = httpx.get(f"{base}/providers")
            except httpx.TransportError:
                return None
            return answer.json()["data"]["providers"] if answer.status_code == 200 else None

        [fever] = [
            p
            for p in wait_for(providers, timeout=60, what="the API")  # type: ignore[union-attr]
            if p["name"] == "fever"
        ]
        titles = {e["title"] for e in httpx.get(f"{base}/search").json()["data"]["events"]}
    finally:
        stop_process(process)

    assert ABSENT not in titles
    assert titles  # what is still in the feed is served
    last = fever["retention"]["last_run"]
    assert (last["trigger"], last["outcome"], last["hidden"]) == ("embedded", "success", 1)
    assert fever["retention"]["events"]["hidden"] == 1
    assert "retention=86400s" in log.read_text()  # the start line says retention runs daily
