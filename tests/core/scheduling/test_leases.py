"""The lease of a live run: renewed while it lives, given up past the longest hold, lost once its
record is closed; a run longer than its lease keeps its provider."""

import threading
import uuid

import pytest
from sqlalchemy.engine import Engine

from core.runs import records
from core.scheduling.context import build_context
from core.scheduling.job import JobResult, run_fetch
from core.scheduling.lease import Lease
from core.scheduling.locks import create_locks
from core.settings import Settings
from core.store.db import transaction
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import recorded, wait_for
from tests.support.feed_server import Answer, FeedServer


def started_run(engine: Engine, settings: Settings) -> uuid.UUID:
    with transaction(engine) as session:
        run = records.start_run(
            session=session,
            provider="fever",
            trigger="cli",
            attempt=1,
            holder="test:1",
            lease_seconds=settings.MARQUEE_LEASE_SECONDS,
        )
        return run.id


def lease_for(engine: Engine, settings: Settings, clock: list[float]) -> Lease:
    lock = create_locks(
        redis_url=settings.REDIS_URL,
        prefix=settings.MARQUEE_REDIS_KEY_PREFIX,
        lease_seconds=settings.MARQUEE_LEASE_SECONDS,
        engine=engine,
    ).for_provider("fever")
    assert lock.acquire()
    return Lease(
        run_id=started_run(engine, settings),
        provider="fever",
        lock=lock,
        engine=engine,
        lease_seconds=settings.MARQUEE_LEASE_SECONDS,
        max_hold_seconds=settings.MARQUEE_LOCK_TIMEOUT_SECONDS,
        monotonic=lambda: clock[0],
    )


def other_lock(engine: Engine, settings: Settings):  # type: ignore[no-untyped-def]
    return create_locks(
        redis_url=settings.REDIS_URL,
        prefix=settings.MARQUEE_REDIS_KEY_PREFIX,
        lease_seconds=settings.MARQUEE_LEASE_SECONDS,
        engine=engine,
    ).for_provider("fever")


def test_lease_renewal_moves_its_records_expiry(settings: Settings, engine: Engine) -> None:
    lease = lease_for(engine, settings, [0.0])
    [before] = recorded(engine)

    lease.tick()

    [after] = recorded(engine)
    assert after.lease_expires_at is not None and before.lease_expires_at is not None
    assert after.lease_expires_at > before.lease_expires_at and not lease.lost
    assert not other_lock(engine, settings).acquire()
    lease.lock.release()


def test_lease_gives_its_lock_up_after_the_longest_hold(settings: Settings, engine: Engine) -> None:
    clock = [0.0]
    lease = lease_for(engine, settings, clock)
    clock[0] = settings.MARQUEE_LOCK_TIMEOUT_SECONDS + 1.0

    lease.tick()

    assert lease.lost and "MARQUEE_LOCK_TIMEOUT_SECONDS" in (lease.lost_reason or "")
    taker = other_lock(engine, settings)
    assert taker.acquire()
    taker.release()


def test_lease_is_lost_once_another_run_closes_its_record(
    settings: Settings, engine: Engine
) -> None:
    lease = lease_for(engine, settings, [0.0])
    with transaction(engine) as session:
        records.interrupt_runs(session=session, run_ids=[lease.run_id], error="interrupted: test")

    lease.tick()

    assert lease.lost and lease.lost_reason == "its record was closed by another run"


@pytest.mark.parametrize("with_redis", [True, False], ids=["redis", "database-lock"])
def test_run_longer_than_its_lease_keeps_its_provider_and_its_record(
    with_redis: bool,
    request: pytest.FixtureRequest,
    settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if with_redis:
        request.getfixturevalue("redis_env")
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    monkeypatch.setenv("MARQUEE_LEASE_SECONDS", "3")
    feed_server.serve("/fever", Answer(fixture_bytes("fever", "response_1.xml"), delay=5.0))
    context = build_context(Settings(), engine=engine)
    results: list[JobResult] = []
    slow = threading.Thread(
        target=lambda: results.append(run_fetch(context, "fever", trigger="cli"))
    )
    slow.start()
    wait_for(lambda: feed_server.hits("/fever") == 1, timeout=10, what="the slow download")
    [first] = recorded(engine)
    # Past the lease: only its renewals keep it.
    wait_for(
        lambda: recorded(engine)[0].heartbeat_at > first.lease_expires_at,  # type: ignore[operator]
        timeout=10,
        what="a renewal past the first lease",
    )

    other = run_fetch(build_context(Settings(), engine=engine), "fever", trigger="schedule")
    slow.join(timeout=30)

    assert other.outcome == "skipped"
    assert [result.outcome for result in results] == ["success"]
    assert sorted((run.outcome, run.inserted) for run in recorded(engine)) == [
        ("skipped", 0),
        ("success", 3),
    ]
