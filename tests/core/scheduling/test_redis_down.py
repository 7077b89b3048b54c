"""Redis down: `marquee fetch` says so in one line and records the failed run; the worker and
beat say so in a line per attempt and carry on when it is back."""

import time
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import (
    OwnRedis,
    free_port,
    recorded,
    run_command,
    wait_for,
)
from tests.support.feed_server import FeedServer


def test_fetch_with_redis_unreachable_prints_one_line_and_records_a_failed_run(
    database_url: str, feed_server: FeedServer, engine: Engine, tmp_path: Path
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    env = {
        "DATABASE_URL": database_url,
        "MARQUEE_FEVER_URL": feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml")),
        "REDIS_URL": closed,
    }

    fetch = run_command(["fetch", "fever"], env, tmp_path)

    assert fetch.returncode == 1
    assert fetch.stderr.splitlines() == [
        f"fetch of fever failed: run lock unavailable: Redis at {closed} cannot be reached "
        f"(Error 111 connecting to 127.0.0.1:{closed.split(':')[2].split('/')[0]}. "
        "Connection refused.)"
    ]
    assert feed_server.hits("/fever") == 0
    [run] = recorded(engine)
    assert (run.trigger, run.outcome, run.reason) == ("cli", "failed", "lock_unavailable")
    assert run.error is not None and "cannot be reached" in run.error


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_and_beat_carry_on_when_their_redis_comes_back(
    start_worker,
    start_beat,
    own_redis: OwnRedis,
    redis_env: dict[str, str],
    database_url: str,
    feed_server: FeedServer,
    engine: Engine,
) -> None:
    env = {
        **redis_env,
        "REDIS_URL": own_redis.url,
        "DATABASE_URL": database_url,
        "MARQUEE_FEVER_URL": feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml")),
        "MARQUEE_FEVER_INTERVAL_SECONDS": "10",
    }
    worker, beat = start_worker(env), start_beat(env)
    wait_for(lambda: recorded(engine), timeout=40, what="the first scheduled fetch")

    own_redis.stop()
    wait_for(
        lambda: "could not send a scheduled fetch" in beat.output(),
        timeout=30,
        what="beat to miss a run",
    )
    wait_for(lambda: "Cannot connect to redis" in worker.output(), timeout=30, what="the worker")
    own_redis.start()
    back = time.time()

    wait_for(
        lambda: [
            r
            for r in recorded(engine)
            if r.started_at.timestamp() > back and r.outcome == "success"
        ],
        timeout=40,
        what="a successful fetch after Redis came back",
    )
    for process in (worker, beat):
        assert "Traceback" not in process.output()
    missed = [line for line in beat.output().splitlines() if "could not send" in line]
    assert all("Connection refused" in line for line in missed)
