"""Real Redis keys and a real Celery worker, isolated per test session by a unique prefix and queue."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

REDIS_URL = os.environ.get("MARQUEE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test session uses; its keys are deleted afterwards."""
    prefix = f"marquee-test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_env(monkeypatch: pytest.MonkeyPatch, redis_prefix: str) -> dict[str, str]:
    """REDIS_URL, key prefix and queue for this test, set in the environment."""
    env = {
        "REDIS_URL": REDIS_URL,
        "MARQUEE_REDIS_KEY_PREFIX": redis_prefix,
        "MARQUEE_CELERY_QUEUE": f"{redis_prefix}{uuid.uuid4().hex[:6]}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def wait_for(condition: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], log: Path) -> None:
        self.process, self.log = process, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    """Start `marquee worker` (threads pool, two at once) with the given environment."""
    started: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        command = [
            *(sys.executable, "-m", "core.cli", "worker", "--"),
            *("--pool=threads", "--concurrency=2", "--without-gossip", "--without-mingle"),
            "--without-heartbeat",
        ]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                command,
                cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log)
        started.append(worker)
        wait_for(
            lambda: "ready" in worker.output() or process.poll() is not None,
            timeout=30,
            what="the worker to start",
        )
        assert process.poll() is None, worker.output()
        return worker

    yield start
    for worker in started:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
