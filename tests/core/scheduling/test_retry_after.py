"""A provider's Retry-After outlives the run that got it, within a cap, checked under the lock."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from core.scheduling.context import JobContext, build_context
from core.scheduling.job import run_fetch
from core.scheduling.locks import LocalLocks, RunLock
from core.scheduling.retry import honoured_wait
from core.settings import Settings
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import recorded
from tests.support.feed_server import Answer, FeedServer


def test_scheduled_run_skips_a_provider_whose_retry_after_outlasts_the_retry_span(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    # Fever's 60 s interval leaves a 30 s retry span: a 120 s Retry-After cannot be a retry.
    feed_server.serve("/fever", Answer(b"slow down", status=429, headers={"Retry-After": "120"}))
    context = build_context(fever_settings, engine=engine)

    first = run_fetch(context, "fever", trigger="schedule")
    before = datetime.now(UTC)
    second = run_fetch(context, "fever", trigger="schedule")
    embedded = run_fetch(context, "fever", trigger="embedded")

    assert (first.outcome, first.retry_in) == ("failed", None)
    assert (second.outcome, embedded.outcome) == ("skipped", "skipped")
    assert feed_server.hits("/fever") == 1
    assert second.not_before is not None
    assert before + timedelta(seconds=100) < second.not_before <= before + timedelta(seconds=120)
    assert "provider asked us to wait until" in (second.error or "")
    assert "Retry-After" in (second.error or "")
    assert [run.outcome for run in recorded(engine)] == ["failed", "skipped", "skipped"]


def test_operator_fetch_goes_ahead_despite_retry_after_and_lifts_the_wait(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve(
        "/fever",
        Answer(b"slow down", status=429, headers={"Retry-After": "120"}),
        fixture_bytes("fever", "response_1.xml"),
        fixture_bytes("fever", "response_1.xml"),
    )
    context = build_context(fever_settings, engine=engine)
    run_fetch(context, "fever", trigger="schedule")

    operator = run_fetch(context, "fever", trigger="cli", retry=False)
    scheduled = run_fetch(context, "fever", trigger="schedule")

    assert (operator.outcome, scheduled.outcome) == ("success", "success")
    assert feed_server.hits("/fever") == 3


def test_scheduled_run_calls_the_provider_again_once_retry_after_has_passed(
    engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    monkeypatch.setenv("MARQUEE_RETRY_MAX_ATTEMPTS", "1")
    feed_server.serve(
        "/fever",
        Answer(b"slow down", status=429, headers={"Retry-After": "1"}),
        fixture_bytes("fever", "response_1.xml"),
    )
    context = build_context(Settings(), engine=engine)
    run_fetch(context, "fever", trigger="schedule")
    assert run_fetch(context, "fever", trigger="schedule").outcome == "skipped"

    context.clock = lambda: datetime.now(UTC) + timedelta(seconds=1.2)
    later = run_fetch(context, "fever", trigger="schedule")

    assert later.outcome == "success"
    assert feed_server.hits("/fever") == 2


def test_retry_that_waited_exactly_retry_after_is_not_skipped_by_it(
    engine: Engine, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    # A backoff far below Retry-After, so the retry waits Retry-After and nothing more.
    monkeypatch.setenv("MARQUEE_RETRY_BACKOFF_SECONDS", "0.01")
    feed_server.serve(
        "/fever",
        Answer(b"slow down", status=429, headers={"Retry-After": "1"}),
        fixture_bytes("fever", "response_1.xml"),
    )
    context = build_context(Settings(), engine=engine)
    first = run_fetch(context, "fever", trigger="schedule")
    assert (first.outcome, first.retry_in) == ("retrying", 1.0)

    # Just before the wait ends the provider is not called; once it has passed, it is.
    context.clock = lambda: datetime.now(UTC) + timedelta(seconds=first.retry_in - 0.5)
    early = run_fetch(
        context, "fever", trigger="schedule", attempt=2, first_started=first.first_started
    )
    assert early.outcome == "skipped"
    context.clock = lambda: datetime.now(UTC) + timedelta(seconds=first.retry_in)
    retry = run_fetch(
        context, "fever", trigger="schedule", attempt=2, first_started=first.first_started
    )

    assert retry.outcome == "success"
    assert feed_server.hits("/fever") == 2


@pytest.mark.parametrize(
    ("interval", "cap"), [(60, 3600), (600, 6000), (7200, 72_000), (86_400, 86_400)]
)
def test_retry_after_is_honoured_up_to_ten_intervals_between_an_hour_and_a_day(
    interval: int, cap: float
) -> None:
    assert honoured_wait(cap + 1, interval_seconds=interval) == cap
    assert honoured_wait(cap - 1, interval_seconds=interval) == cap - 1


@pytest.mark.parametrize("retry_after", ["315360000", "999999999999"])
def test_scheduled_run_waits_at_most_the_cap_whatever_retry_after_asks(
    retry_after: str, fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve(
        "/fever", Answer(b"slow down", status=429, headers={"Retry-After": retry_after})
    )
    context = build_context(fever_settings, engine=engine)
    before = datetime.now(UTC)

    first = run_fetch(context, "fever", trigger="schedule")
    after = datetime.now(UTC)
    second = run_fetch(context, "fever", trigger="schedule")

    # Fever polls every 60 s: ten intervals is under an hour, so an hour is the cap.
    assert first.not_before is not None
    assert before + timedelta(hours=1) <= first.not_before <= after + timedelta(hours=1)
    assert (first.outcome, second.outcome, second.not_before) == (
        "failed",
        "skipped",
        first.not_before,
    )
    runs = recorded(engine)
    assert [run.outcome for run in runs] == ["failed", "skipped"]
    assert runs[0].not_before == first.not_before


class LockTakenJustAfterA429:
    """Real in-process locks, except that taking one first lets another process's run get a 429
    and release its own lock: the race between checking Retry-After and taking the lock."""

    def __init__(self, other: JobContext) -> None:
        self.locks, self.other = LocalLocks(), other

    def for_provider(self, provider: str) -> RunLock:
        lock, other = self.locks.for_provider(provider), self.other

        class Racing:
            def acquire(self) -> bool:
                assert run_fetch(other, provider, trigger="schedule").not_before is not None
                return lock.acquire()

            def release(self) -> None:
                lock.release()

        return Racing()


def test_scheduled_run_checks_retry_after_once_it_holds_the_lock(
    fever_settings: Settings, engine: Engine, feed_server: FeedServer
) -> None:
    feed_server.serve(
        "/fever",
        Answer(b"slow down", status=429, headers={"Retry-After": "120"}),
        fixture_bytes("fever", "response_1.xml"),
    )
    context = build_context(fever_settings, engine=engine)
    context.locks = LockTakenJustAfterA429(build_context(fever_settings, engine=engine))

    late = run_fetch(context, "fever", trigger="schedule")

    assert feed_server.hits("/fever") == 1
    assert late.outcome == "skipped"
    assert [run.outcome for run in recorded(engine)] == ["failed", "skipped"]
    assert context.locks.locks.for_provider("fever").acquire()  # released after the skip
