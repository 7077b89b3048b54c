"""The run record looks after itself: abandoned runs closed, old runs pruned."""

import logging

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.runs.records import ABANDONED
from core.scheduling.context import build_context
from core.scheduling.embedded import STOPPED, EmbeddedScheduler
from core.scheduling.job import run_fetch
from core.settings import Settings
from core.store.models import Event
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import insert_run, recorded, wait_for
from tests.support.feed_server import Answer, FeedServer

FEVER = ("provider", "fever")


def test_run_that_takes_the_lock_closes_every_other_running_row_of_its_provider_as_abandoned(
    engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whoever holds the lock is the only live run: every other running row is a dead one's.
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    minute = 60 / 86_400
    insert_run(engine, "running", days_ago=2 * minute)  # no lease: written before leases existed
    insert_run(engine, "running", days_ago=minute / 60)  # a few seconds old: killed just now
    insert_run(engine, "running", days_ago=2 * minute, provider="other")
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))

    result = run_fetch(build_context(Settings(), engine=engine), "fever", trigger="schedule")

    assert result.outcome == "success"
    fever = [run for run in recorded(engine) if run.provider == "fever"]
    assert [(run.outcome, run.reason, run.error) for run in fever] == [
        ("failed", "abandoned", ABANDONED),
        ("failed", "abandoned", ABANDONED),
        ("success", None, None),
    ]
    assert all(run.finished_at is None for run in fever[:2])  # nobody saw them end
    # Another provider's run is not this lock's business.
    assert [run.outcome for run in recorded(engine) if run.provider == "other"] == ["running"]


def test_run_prunes_its_provider_runs_older_than_the_history_window(
    engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    monkeypatch.setenv("MARQUEE_RUN_HISTORY_DAYS", "7")
    for outcome in ("success", "failed", "skipped"):
        insert_run(engine, outcome, days_ago=8)
    insert_run(engine, "failed", days_ago=6)
    insert_run(engine, "failed", days_ago=8, provider="other")
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))

    run_fetch(build_context(Settings(), engine=engine), "fever", trigger="schedule")

    kept = [(run.provider, run.outcome) for run in recorded(engine)]
    assert kept == [("other", "failed"), ("fever", "failed"), ("fever", "success")]


def test_pruning_keeps_the_last_success_however_old(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    insert_run(engine, "success", days_ago=40)
    insert_run(engine, "failed", days_ago=35)
    feed_server.serve("/fever", Answer(b"gone", status=404))

    run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="schedule")

    assert [run.outcome for run in recorded(engine)] == ["success", "failed"]


def test_metrics_keep_counting_runs_after_they_are_pruned(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    for days_ago in (40, 39):
        insert_run(engine, "success", days_ago=days_ago)
    insert_run(engine, "failed", days_ago=38)
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="schedule")
    assert [run.outcome for run in recorded(engine)] == ["success"]

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
    }

    success, failed = (("outcome", "success"), FEVER), (("outcome", "failed"), FEVER)
    assert samples[("marquee_fetch_runs_total", success)] == 3
    assert samples[("marquee_fetch_runs_total", failed)] == 1
    assert samples[("marquee_fetch_duration_seconds_count", success)] == 3
    assert samples[("marquee_fetch_duration_seconds_sum", success)] >= 4.0
    assert samples[("marquee_events_upserted_total", (FEVER,))] == 3


@pytest.mark.parametrize("days", ["0", "-1", "many"])
def test_settings_refuse_a_run_history_shorter_than_a_day(
    days: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_RUN_HISTORY_DAYS", days)

    with pytest.raises(ValidationError, match="MARQUEE_RUN_HISTORY_DAYS"):
        Settings()


def test_embedded_scheduler_stop_closes_the_fetch_it_could_not_wait_for_as_interrupted(
    fever_settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=2.0))
    scheduler = EmbeddedScheduler(build_context(fever_settings, engine=engine)).start()
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=10, what="the first download")
    caplog.set_level(logging.INFO, logger="marquee.embedded")

    scheduler.stop(timeout=0.1)

    closed = [(run.outcome, run.reason, run.error) for run in recorded(engine)]
    messages = {r.getMessage(): r for r in caplog.records if r.name == "marquee.embedded"}
    assert messages["waiting for fetches in flight"].providers == "fever"  # type: ignore[attr-defined]
    warning = messages["stopped with fetches still running; closed them as interrupted"]
    assert warning.providers == "fever"  # type: ignore[attr-defined]
    assert closed == [("failed", "interrupted", f"interrupted: {STOPPED}")]
    scheduler.stop(timeout=30)  # the fetch thread ends: what it downloaded is refused
    [run] = recorded(engine)
    assert (run.outcome, run.reason, run.inserted) == ("failed", "interrupted", 0)
    assert run.finished_at is not None
    with Session(engine) as session:
        assert session.exec(select(Event)).all() == []
