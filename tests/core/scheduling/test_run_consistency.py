"""The run record stays true while processes race: scrapes beside prunes, runs beside live runs."""

import logging
import threading
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from prometheus_client.core import Metric
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.runs import history
from core.runs.metrics import StoreCollector
from core.runs.records import ABANDONED, LOCK_HELD
from core.scheduling.context import JobContext, build_context
from core.scheduling.job import JobResult, run_fetch
from core.settings import Settings
from core.store.db import transaction
from core.store.models import Event, FetchRun
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import insert_run, recorded, wait_for
from tests.support.feed_server import Answer, FeedServer


def fetch_run_counts(metrics: list[Metric]) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for family in metrics
        if family.name == "marquee_fetch_runs"
        for sample in family.samples
        if sample.labels["provider"] == "fever"
    }


def test_scrape_keeps_run_counters_when_a_prune_commits_between_its_reads(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for days_ago in (40, 39):
        insert_run(engine, "success", days_ago=days_ago)
    insert_run(engine, "failed", days_ago=38)
    pruned: list[int] = []

    def prune_after_first_read(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Another process's run prunes right after the scrape's first read of the run record.
        if pruned or "fetch_run" not in statement:
            return
        pruned.append(0)
        with transaction(engine) as session:
            pruned[0] = history.prune(session=session, provider="fever", keep_days=30)

    sa.event.listen(engine, "after_cursor_execute", prune_after_first_read)
    try:
        metrics = list(StoreCollector(engine, timeout_seconds=10).collect())
    finally:
        sa.event.remove(engine, "after_cursor_execute", prune_after_first_read)

    assert pruned == [2]  # the oldest success and the failure; the last success is kept
    assert fetch_run_counts(metrics) == {"success": 2, "failed": 1}
    # And the next scrape, after the prune, says the same.
    again = list(StoreCollector(engine, timeout_seconds=10).collect())
    assert fetch_run_counts(again) == {"success": 2, "failed": 1}


def start_slow_run(context: JobContext) -> tuple[threading.Thread, list[JobResult]]:
    """Run a fetch in a thread, as another process would, and wait until it is downloading."""
    results: list[JobResult] = []
    thread = threading.Thread(
        target=lambda: results.append(run_fetch(context, "fever", trigger="cli", retry=False))
    )
    thread.start()
    return thread, results


def running_rows(engine: Engine) -> list[FetchRun]:
    return [run for run in recorded(engine) if run.outcome == "running"]


def test_run_beside_a_live_run_of_another_context_is_skipped_without_redis(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    # No Redis: the database's own lock (advisory lock, lock file) still sees the other run.
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=2.0))
    thread, slow = start_slow_run(build_context(fever_settings, engine=engine))
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=10, what="the slow download")

    other = run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="schedule")
    during = [(run.outcome, run.error) for run in running_rows(engine)]
    thread.join(timeout=30)

    assert other.outcome == "skipped"
    assert other.error is not None and other.error.startswith(LOCK_HELD)
    assert during == [("running", None)]
    assert [result.outcome for result in slow] == ["success"]
    assert feed_server.hits("/fever") == 1
    assert sorted(run.outcome for run in recorded(engine)) == ["skipped", "success"]
    assert [run.inserted for run in recorded(engine) if run.outcome == "success"] == [3]


def test_run_that_lost_its_lease_writes_nothing_over_the_run_that_took_over(
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
    redis_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    settings = Settings()
    feed_server.serve(
        "/fever",
        Answer(fixture_bytes("fever", "response_1.xml"), delay=2.0),
        fixture_bytes("fever", "response_2.xml"),
    )
    thread, slow = start_slow_run(build_context(settings, engine=engine))
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=10, what="the slow download")
    # The slow run's lease lapses, as it does when its process freezes past it.
    client = redis.Redis.from_url(redis_env["REDIS_URL"])
    client.delete(f"{redis_env['MARQUEE_REDIS_KEY_PREFIX']}lock:fetch:fever")
    client.close()
    other = run_fetch(build_context(settings, engine=engine), "fever", trigger="schedule")
    failures_then = metrics_failures(engine)
    caplog.set_level(logging.WARNING, logger="marquee.jobs")
    thread.join(timeout=30)

    assert other.outcome == "success"
    [late] = slow
    assert late.outcome == "failed" and late.reason == "lease_lost"
    # The older feed (response_1, with Pantomima Full) was refused: only response_2's events.
    with Session(engine) as session:
        titles = set(session.exec(select(Event.title)))
    assert titles == {"Camela en concierto", "Los Morancos"}
    # A failure counted once stays counted: Prometheus would read 1 -> 0 as a counter reset.
    assert failures_then == metrics_failures(engine) == 1
    assert [(run.outcome, run.error) for run in recorded(engine)] == [
        ("failed", ABANDONED),
        ("success", None),
    ]
    assert any(
        r.getMessage().startswith("run finished after its record was closed")
        for r in caplog.records
    )


def metrics_failures(engine: Engine) -> float:
    return fetch_run_counts(list(StoreCollector(engine, timeout_seconds=10).collect())).get(
        "failed", 0
    )
