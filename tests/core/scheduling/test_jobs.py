"""The fetch job every trigger calls: locked, recorded, and classifying failures."""

import logging
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.logs import TextFormatter
from core.scheduling.context import build_context
from core.scheduling.job import JobResult, run_fetch
from core.scheduling.locks import RedisLocks
from core.settings import Settings
from core.store.models import Event, FetchRun
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import REDIS_URL, wait_for
from tests.support.feed_server import Answer, FeedServer


@pytest.fixture
def fever_settings(
    settings: Settings, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    monkeypatch.setenv("MARQUEE_RETRY_BACKOFF_SECONDS", "1")
    return Settings()


def recorded(engine: Engine) -> list[FetchRun]:
    with Session(engine) as session:
        return list(session.exec(select(FetchRun).order_by(col(FetchRun.started_at))))


def test_job_records_a_successful_run_with_its_counts(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))

    result = run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="cli")

    assert result.outcome == "success"
    [run] = recorded(engine)
    assert (run.trigger, run.outcome, run.inserted, run.error) == ("cli", "success", 3, None)
    assert run.finished_at is not None and run.finished_at >= run.started_at


def test_job_schedules_a_retry_for_a_server_error_and_records_it(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve("/fever", Answer(b"down", status=503))

    result = run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="schedule")

    assert result.outcome == "retrying"
    assert result.retry_in is not None and 0.75 <= result.retry_in <= 1.0
    [run] = recorded(engine)
    assert run.outcome == "retrying" and "HTTP 503" in (run.error or "")


def test_job_waits_as_long_as_retry_after_asks(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve("/fever", Answer(b"slow down", status=429, headers={"Retry-After": "7"}))

    result = run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="schedule")

    assert (result.outcome, result.retry_in) == ("retrying", 7)


def test_job_does_not_retry_a_client_error(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve("/fever", Answer(b"no", status=403))

    result = run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="schedule")

    assert (result.outcome, result.retry_in) == ("failed", None)
    assert "HTTP 403" in (recorded(engine)[0].error or "")


def test_job_does_not_retry_a_feed_that_cannot_be_parsed(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve("/fever", b"<eventList><output><base_event")

    result = run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="schedule")

    assert (result.outcome, result.retry_in) == ("failed", None)


def test_job_keeps_credentials_out_of_the_recorded_error(
    settings: Settings, engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.serve("/fever", Answer(b"no", status=404))
    url = feed_server.url("/fever").replace("http://", "http://partner:s3cret@")
    monkeypatch.setenv("MARQUEE_FEVER_URL", url)

    run_fetch(build_context(Settings(), engine=engine), "fever", trigger="cli", retry=False)

    error = recorded(engine)[0].error or ""
    assert "HTTP 404" in error
    assert "s3cret" not in error


def test_two_concurrent_runs_of_one_provider_run_once_and_skip_once(
    fever_settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    redis_env: dict[str, str],
) -> None:
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=1.0))
    context = build_context(Settings(), engine=engine)
    results: list[JobResult] = []
    first = threading.Thread(
        target=lambda: results.append(run_fetch(context, "fever", trigger="schedule"))
    )

    first.start()
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=10, what="the first download")
    results.append(run_fetch(context, "fever", trigger="cli"))
    first.join(timeout=30)

    assert sorted(result.outcome for result in results) == ["skipped", "success"]
    assert feed_server.hits("/fever") == 1
    with Session(engine) as session:
        assert len(session.exec(select(Event)).all()) == 3
    assert sorted(run.outcome for run in recorded(engine)) == ["skipped", "success"]


def test_lock_of_a_crashed_run_expires(redis_prefix: str) -> None:
    locks = RedisLocks(REDIS_URL, prefix=redis_prefix, lease_seconds=1)
    crashed = locks.for_provider("expiring")

    assert crashed.acquire()
    assert not locks.for_provider("expiring").acquire()
    wait_for(lambda: locks.for_provider("expiring").acquire(), timeout=10, what="lock expiry")


def test_lock_release_leaves_a_lock_another_run_now_owns(redis_prefix: str) -> None:
    locks = RedisLocks(REDIS_URL, prefix=redis_prefix, lease_seconds=1)
    slow, fresh = locks.for_provider("handover"), locks.for_provider("handover")
    assert slow.acquire()
    wait_for(fresh.acquire, timeout=10, what="the slow run's lock to expire")

    slow.release()

    assert not locks.for_provider("handover").acquire()


def test_job_logs_each_step_with_provider_and_run_id(
    fever_settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_server.serve(
        "/fever", Answer(b"down", status=503), fixture_bytes("fever", "response_1.xml")
    )
    context = build_context(fever_settings, engine=engine)
    caplog.set_level(logging.INFO, logger="marquee.jobs")

    run_fetch(context, "fever", trigger="schedule")
    run_fetch(context, "fever", trigger="schedule", attempt=2)

    records = {
        record.getMessage(): record for record in caplog.records if record.name == "marquee.jobs"
    }
    assert records["retry scheduled"].delay_seconds > 0  # type: ignore[attr-defined]
    assert records["run finished"].inserted == 3  # type: ignore[attr-defined]
    for record in records.values():
        assert record.provider == "fever"  # type: ignore[attr-defined]
        assert record.run_id  # type: ignore[attr-defined]


@pytest.fixture
def database_refusing_an_event(engine: Engine) -> Iterator[None]:
    """The database refuses one of response_1.xml's events, as a real constraint would."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                sa.text(
                    "ALTER TABLE event ADD CONSTRAINT refuse_morancos "
                    "CHECK (title <> 'Los Morancos') NOT VALID"
                )
            )
        else:
            connection.execute(
                sa.text(
                    "CREATE TRIGGER refuse_morancos BEFORE INSERT ON event "
                    "WHEN NEW.title = 'Los Morancos' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("ALTER TABLE event DROP CONSTRAINT refuse_morancos"))
            else:
                connection.execute(sa.text("DROP TRIGGER refuse_morancos"))


def test_database_error_mid_ingest_keeps_sql_and_feed_content_out_of_logs_and_record(
    fever_settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    database_refusing_an_event: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    caplog.set_level(logging.INFO)

    result = run_fetch(build_context(fever_settings, engine=engine), "fever", trigger="cli")

    assert result.outcome == "failed"
    [run] = recorded(engine)
    assert run.error is not None and run.error.startswith("database error: IntegrityError: ")
    lines = [TextFormatter().format(record) for record in caplog.records]
    for text in [run.error, *lines]:
        assert "Camela en concierto" not in text and "[parameters" not in text
        assert "INSERT" not in text and len(text) < 1000
    with Session(engine) as session:
        assert session.exec(select(Event)).all() == []
