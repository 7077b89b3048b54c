"""Retention on a schedule: one daily beat entry when a stage is set, the `marquee.retention` task
on a real worker, and never beside a fetch of the same provider (the fetch's own lock)."""

import dataclasses
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

import core.scheduling.retention as retention_module
from core.plugins.registry import load_registry
from core.retention.stages import Pass
from core.runs.records import LOCK_HELD
from core.scheduling import celery_app
from core.scheduling.celery_app import ProviderScheduler, create_celery_app
from core.scheduling.context import JobContext, build_context
from core.scheduling.job import run_fetch
from core.scheduling.locks import LockUnavailable
from core.scheduling.retention import LockLost, _Renewal, run_retention
from core.scheduling.schedule import (
    RETENTION_ENTRY,
    TASK_FETCH_PROVIDER,
    TASK_RETENTION,
    build_beat_schedule,
)
from core.settings import Settings
from core.store.models import FetchRun, Trigger
from tests.core.scheduling.conftest import REDIS_URL, wait_for
from tests.core.scheduling.retention_support import (
    ABSENT,
    hidden,
    retention_runs,
    seed_absent_event,
)
from tests.core.scheduling.test_schedule import ToyPlugin
from tests.support.feed_server import FeedServer

TASK_TIMEOUT = 40
postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

# --- the beat schedule ---------------------------------------------------------------------------


def beat_schedule(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The schedule a starting beat builds (ProviderScheduler.setup_schedule), with fever and toy."""
    env = {"MARQUEE_PROVIDERS": "fever,toy", "REDIS_URL": REDIS_URL, **env}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    registry = load_registry(settings, extra_plugins={"toy": ToyPlugin()})
    context = build_context(settings, registry=registry)
    monkeypatch.setattr(celery_app, "process_context", lambda: context)
    scheduler = ProviderScheduler(app=create_celery_app(settings))
    try:
        assert set(scheduler.schedule) == set(scheduler.app.conf.beat_schedule)
        return {
            name: {
                "task": entry.task,
                "schedule": entry.schedule.run_every.total_seconds(),
                "args": tuple(entry.args),
                "kwargs": entry.kwargs,
                "queue": entry.options["queue"],
                "due": entry.is_due().is_due,
            }
            for name, entry in scheduler.schedule.items()
        }
    finally:
        context.engine.dispose()


FETCHES = {
    "fetch-fever": {
        "task": TASK_FETCH_PROVIDER,
        "schedule": 60.0,
        "args": ("fever",),
        "kwargs": {"trigger": "schedule"},
        "queue": "marquee",
        "due": True,
    },
    "fetch-toy": {
        "task": TASK_FETCH_PROVIDER,
        "schedule": 300.0,
        "args": ("toy",),
        "kwargs": {"trigger": "schedule"},
        "queue": "marquee",
        "due": True,
    },
}


def retention_entry(every: float) -> dict[str, Any]:
    return {
        "task": TASK_RETENTION,
        "schedule": every,
        "args": (),
        "kwargs": {"trigger": "schedule"},
        "queue": "marquee",
        "due": True,  # a starting beat runs it at once, like the fetches
    }


def test_beat_has_no_retention_entry_when_no_stage_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The interval alone is no policy.
    schedule = beat_schedule({"MARQUEE_RETENTION_INTERVAL_SECONDS": "3600"}, monkeypatch)

    assert schedule == FETCHES


@pytest.mark.parametrize(
    ("env", "every"),
    [
        ({"MARQUEE_RETENTION_HIDE_AFTER_DAYS": "30"}, 86_400.0),
        ({"MARQUEE_RETENTION_PURGE_AFTER_DAYS": "0"}, 86_400.0),
        ({"MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS": "7"}, 86_400.0),  # one provider's override
        (
            {
                "MARQUEE_TOY_RETENTION_ARCHIVE_AFTER_DAYS": "7",
                "MARQUEE_RETENTION_HIDE_AFTER_DAYS": "1",
            },
            86_400.0,
        ),
        (
            {
                "MARQUEE_RETENTION_HIDE_AFTER_DAYS": "30",
                "MARQUEE_RETENTION_INTERVAL_SECONDS": "3600",
            },
            3600.0,
        ),
    ],
)
def test_beat_has_one_retention_entry_for_all_providers_when_a_stage_is_set(
    env: dict[str, str], every: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = beat_schedule(env, monkeypatch)

    assert schedule == {**FETCHES, RETENTION_ENTRY: retention_entry(every)}


def test_build_beat_schedule_adds_retention_only_when_given_an_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_PROVIDERS", "fever,toy")
    entries = load_registry(Settings(), extra_plugins={"toy": ToyPlugin()}).enabled()

    without = build_beat_schedule(entries, queue="q")
    with_retention = build_beat_schedule(entries, queue="q", retention_seconds=86_400)

    assert set(without) == {"fetch-fever", "fetch-toy"}
    assert {name: with_retention[name] for name in without} == without
    entry = with_retention[RETENTION_ENTRY]
    assert (entry["task"], entry["schedule"], entry["kwargs"]) == (
        TASK_RETENTION,
        86_400.0,
        {"trigger": "schedule"},
    )
    assert entry["options"]["queue"] == "q"
    assert 0 < entry["options"]["expires"] < 86_400
    assert "args" not in entry or not entry["args"]


# --- the task on a real worker -------------------------------------------------------------------


@pytest.fixture
def retention_env(
    database_url: str,
    redis_env: dict[str, str],
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Redis, PostgreSQL, fever only, hiding what is not in the latest feed; set here too."""
    env = {
        **redis_env,
        "DATABASE_URL": database_url,
        "MARQUEE_PROVIDERS": "fever",
        "MARQUEE_FEVER_URL": feed_server.url("/fever"),
        "MARQUEE_RETENTION_HIDE_AFTER_DAYS": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@postgresql_only
def test_worker_runs_the_retention_task_and_records_the_pass(
    start_worker, retention_env: dict[str, str], feed_server: FeedServer, engine: Engine
) -> None:
    seed_absent_event(engine, feed_server)
    start_worker(retention_env)

    sent = create_celery_app(Settings()).send_task(TASK_RETENTION, kwargs={"trigger": "schedule"})
    results = sent.get(timeout=TASK_TIMEOUT)

    assert results == [
        {
            "provider": "fever",
            "outcome": "success",
            "error": None,
            "hidden": 1,
            "archived": 0,
            "purged": 0,
        }
    ]
    assert [title for title, is_hidden in hidden(engine).items() if is_hidden] == [ABSENT]
    [run] = retention_runs(engine)
    assert (run.provider, run.trigger, run.outcome, run.hidden) == (
        "fever",
        "schedule",
        "success",
        1,
    )
    assert run.finished_at is not None


@postgresql_only
def test_beat_and_worker_run_retention_by_themselves(
    start_worker,
    start_beat,
    retention_env: dict[str, str],
    feed_server: FeedServer,
    engine: Engine,
) -> None:
    seed_absent_event(engine, feed_server)
    start_worker(retention_env)

    start_beat(retention_env)

    runs = wait_for(
        lambda: [run for run in retention_runs(engine) if run.outcome != "running"],
        timeout=TASK_TIMEOUT,
        what="a scheduled retention pass",
    )
    assert [(run.trigger, run.outcome) for run in runs] == [("schedule", "success")]  # type: ignore[union-attr]
    assert hidden(engine)[ABSENT]


# --- never beside a fetch of the same provider ---------------------------------------------------


@pytest.fixture(params=["redis", "advisory"])
def lock_kind(request: pytest.FixtureRequest) -> str:
    """The locks the fetch uses: a Redis lease with REDIS_URL, else a PostgreSQL advisory lock."""
    if request.param == "redis":
        request.getfixturevalue("redis_env")
    return request.param


@pytest.fixture
def seeded(
    lock_kind: str,
    settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> JobContext:
    """A context (of another process, as far as locks go) with one absent event to hide."""
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    seed_absent_event(engine, feed_server)
    context = build_context(Settings(), engine=engine)
    assert (
        type(context.locks).__name__
        == {"redis": "RedisLocks", "advisory": "AdvisoryLocks"}[lock_kind]
    )
    return context


@postgresql_only
def test_retention_waits_for_a_fetch_holding_the_lock_then_runs(
    seeded: JobContext, engine: Engine
) -> None:
    fetch_lock = build_context(Settings(), engine=engine).locks.for_provider("fever")
    assert fetch_lock.acquire()
    released_at: list[datetime] = []

    def release() -> None:
        released_at.append(datetime.now(UTC))
        fetch_lock.release()

    timer = threading.Timer(1.0, release)
    timer.start()
    started = time.monotonic()
    try:
        [result] = run_retention(seeded, trigger=Trigger.SCHEDULE)
    finally:
        timer.join()
    waited = time.monotonic() - started

    assert (result.outcome, result.error, result.counts.hidden) == ("success", None, 1)
    assert waited >= 0.9
    assert hidden(engine)[ABSENT]
    [run] = retention_runs(engine)
    assert (run.trigger, run.outcome, run.hidden) == ("schedule", "success", 1)
    assert run.started_at >= released_at[0]  # the pass began once the fetch let go


@postgresql_only
def test_retention_gives_up_on_a_lock_held_past_its_wait_and_the_next_pass_runs(
    seeded: JobContext, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention_module, "LOCK_WAIT_SECONDS", 1.0)
    fetch_lock = build_context(Settings(), engine=engine).locks.for_provider("fever")
    assert fetch_lock.acquire()
    started = time.monotonic()
    try:
        [result] = run_retention(seeded, trigger=Trigger.SCHEDULE)
    finally:
        fetch_lock.release()
    waited = time.monotonic() - started

    assert result.outcome == "failed"
    assert result.error == (
        "a fetch of fever held its lock for over 1 s; retention waits for the next pass"
    )
    assert waited >= 1.0
    assert not hidden(engine)[ABSENT]
    # Recorded, so /providers and the metrics show the failed pass, not only a log line.
    [failed] = retention_runs(engine)
    assert (failed.trigger, failed.outcome, failed.error, failed.hidden) == (
        "schedule",
        "failed",
        result.error,
        0,
    )
    assert failed.finished_at is not None

    [again] = run_retention(seeded, trigger=Trigger.SCHEDULE)

    assert (again.outcome, again.counts.hidden) == ("success", 1)
    assert hidden(engine)[ABSENT]


@postgresql_only
def test_a_fetch_while_retention_holds_the_lock_is_skipped_as_lock_held(
    seeded: JobContext,
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetches = []

    class FetchDuringPass(Pass):
        """A scheduled fetch of the same provider arrives while the pass works."""

        def run(self):  # type: ignore[no-untyped-def]
            other = build_context(Settings(), engine=engine)
            fetches.append(run_fetch(other, "fever", trigger=Trigger.SCHEDULE, retry=False))
            return super().run()

    monkeypatch.setattr(retention_module, "Pass", FetchDuringPass)
    hits = feed_server.hits("/fever")

    [result] = run_retention(seeded, trigger=Trigger.SCHEDULE)

    assert (result.outcome, result.counts.hidden) == ("success", 1)
    [skipped] = fetches
    assert (skipped.outcome, skipped.reason) == ("skipped", "lock_held")
    assert skipped.error is not None and skipped.error.startswith(LOCK_HELD)
    assert "or a retention pass" in skipped.error  # an operator reading it knows who holds it
    assert feed_server.hits("/fever") == hits  # the provider was not downloaded
    with Session(engine) as session:
        run = session.get(FetchRun, skipped.run_id)
        assert run is not None
        assert (run.trigger, run.outcome, run.reason) == ("schedule", "skipped", "lock_held")
    # Once the pass is over, the provider's fetches go ahead.
    after = run_fetch(
        build_context(Settings(), engine=engine), "fever", trigger=Trigger.SCHEDULE, retry=False
    )
    assert after.outcome == "success"


# --- a pass that loses its lock ------------------------------------------------------------------


class FakeLock:
    """The RunLock protocol, with renewals that fail (or cannot tell) on demand."""

    def __init__(self, *, held: bool = True, unreachable: bool = False) -> None:
        self.held, self.unreachable = held, unreachable
        self.renewals = 0
        self.released = False

    def acquire(self) -> bool:
        return True

    def renew(self) -> bool:
        self.renewals += 1
        if self.unreachable:
            raise LockUnavailable("run lock unavailable: Redis cannot be reached")
        return self.held

    def release(self) -> None:
        self.released = True

    def expires_in(self) -> float | None:
        return None


class FakeLocks:
    def __init__(self, lock: FakeLock) -> None:
        self.lock = lock

    def for_provider(self, provider: str) -> FakeLock:
        return self.lock


def check_raises(renewal: _Renewal) -> BaseException | None:
    try:
        renewal.check()
    except LockLost as exc:
        return exc
    return None


def test_renewal_keeps_a_held_lock_and_stops_renewing_when_stopped() -> None:
    lock = FakeLock(held=True)
    renewal = _Renewal(lock, lease_seconds=0.3)
    renewal.start()
    wait_for(lambda: lock.renewals >= 3, timeout=5, what="three renewals")
    renewal.check()  # still held: the pass goes on
    renewal.stop()
    renewals = lock.renewals
    time.sleep(0.3)

    assert lock.renewals == renewals


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        (FakeLock(held=False), "another run may hold it; stopped between batches"),
        (FakeLock(unreachable=True), "Redis cannot be reached"),
    ],
    ids=["not-held", "unreachable"],
)
def test_renewal_that_fails_stops_the_pass_at_its_next_batch(lock: FakeLock, message: str) -> None:
    renewal = _Renewal(lock, lease_seconds=0.3)
    renewal.start()
    try:
        lost = wait_for(lambda: check_raises(renewal), timeout=5, what="the lost lock")
    finally:
        renewal.stop()

    assert str(lost).startswith("lost the provider's lock")
    assert message in str(lost)
    assert lock.renewals == 1  # no renewing a lock that is gone


def test_pass_whose_lock_renewal_fails_ends_between_batches_as_failed(
    settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_RETENTION_BATCH_SIZE", "1")
    monkeypatch.setenv("MARQUEE_LEASE_SECONDS", "3")  # renewed every second
    seed_absent_event(engine, feed_server)
    lock = FakeLock(held=False)
    context = dataclasses.replace(build_context(Settings(), engine=engine), locks=FakeLocks(lock))
    batches: list[str] = []

    class SlowBatches(Pass):
        """The first batch goes at once; the next is asked for until the renewal has failed."""

        def __init__(self, *args, keep_going, **kwargs):  # type: ignore[no-untyped-def]
            def gated() -> None:
                if batches:
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        keep_going()  # raises LockLost once the renewal failed
                        time.sleep(0.05)
                    raise AssertionError("the lock's failed renewal never stopped the pass")
                batches.append("first")
                keep_going()

            super().__init__(*args, keep_going=gated, **kwargs)

    monkeypatch.setattr(retention_module, "Pass", SlowBatches)

    [result] = run_retention(context, trigger=Trigger.SCHEDULE)

    assert result.outcome == "failed"
    assert result.error is not None
    assert result.error.startswith("lost the provider's lock: another run may hold it")
    assert lock.renewals == 1 and lock.released
    # The first batch (the only event) was applied and stays consistent; the pass went no further.
    assert hidden(engine)[ABSENT]
    [run] = retention_runs(engine)
    assert (run.trigger, run.outcome, run.error) == ("schedule", "failed", result.error)
    assert run.finished_at is not None
