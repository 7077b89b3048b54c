"""Real Redis keys and a real Celery worker, isolated per test session by a unique prefix and queue."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.settings import Settings
from core.store.db import transaction
from core.store.models import FetchRun
from tests.support.feed_server import FeedServer
from tests.support.serving import free_port

REDIS_URL = os.environ.get("MARQUEE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[3]


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


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate, and kill what does not stop within ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def start_marquee(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start a `marquee` subcommand and wait until its log says `ready_when`; stopped at teardown."""
    started: list[Worker] = []

    def start(args: list[str], env: dict[str, str], *, ready_when: str) -> Worker:
        log = tmp_path / f"{args[0]}-{len(started)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "core.cli", *args],
                cwd=tmp_path,
                env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log)
        started.append(worker)
        wait_for(
            lambda: ready_when in worker.output() or process.poll() is not None,
            timeout=30,
            what=f"marquee {args[0]} to start",
        )
        assert process.poll() is None, worker.output()
        return worker

    yield start
    for worker in started:
        stop_process(worker.process)


@pytest.fixture
def start_worker(start_marquee: Callable[..., Worker]) -> Callable[[dict[str, str]], Worker]:
    """`marquee worker` with a threads pool running two fetches at once."""
    options = ["--pool=threads", "--concurrency=2", "--without-gossip", "--without-mingle"]
    return lambda env: start_marquee(
        ["worker", "--", *options, "--without-heartbeat"], env, ready_when="ready"
    )


@pytest.fixture
def start_beat(start_marquee: Callable[..., Worker]) -> Callable[[dict[str, str]], Worker]:
    return lambda env: start_marquee(["beat"], env, ready_when="beat: Starting")


@pytest.fixture
def fever_settings(
    settings: Settings, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    return Settings()


def recorded(engine: Engine) -> list[FetchRun]:
    with Session(engine) as session:
        return list(session.exec(select(FetchRun).order_by(col(FetchRun.started_at))))


def insert_run(engine: Engine, outcome: str, *, days_ago: float, provider: str = "fever") -> None:
    started = datetime.now(UTC) - timedelta(days=days_ago)
    finished = None if outcome == "running" else started + timedelta(seconds=2)
    with transaction(engine) as session:
        session.add(
            FetchRun(
                provider=provider,
                trigger="schedule",
                started_at=started,
                finished_at=finished,
                outcome=outcome,
            )
        )


def marquee_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **env}


def start_command(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`marquee ARGS` as a real process, its output in `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "core.cli", *args],
            cwd=log.parent,
            env=marquee_env(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def marquee_run(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], tuple[str, Path]]]:
    """Start `marquee run` on a free port; return its base URL and log file."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> tuple[str, Path]:
        port, log = free_port(), tmp_path / f"run-{len(processes)}.log"
        process = start_command(["run", "--port", str(port)], env, log)
        processes.append(process)
        base = f"http://127.0.0.1:{port}"

        def answering() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{base}/providers").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answering, timeout=30, what="`marquee run` to serve")
        return base, log

    yield start
    for process in processes:
        stop_process(process)


class OwnRedis:
    """A redis-server of this test alone, on a free port, that the test may stop and start."""

    def __init__(self, directory: Path) -> None:
        self.port, self.directory = free_port(), directory

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "OwnRedis":
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(self.directory),
                "--pidfile",
                str(self.directory / f"redis-{self.port}.pid"),
            ],
            check=True,
            capture_output=True,
        )
        wait_for(self.answers, timeout=10, what="redis-server to answer")
        return self

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True
        )
        wait_for(lambda: not self.answers(), timeout=10, what="redis-server to stop")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path).start()
    yield server
    if server.answers():
        server.stop()


def interrupt(process: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> int:
    process.send_signal(signum)
    return process.wait(timeout=30)


def run_command(
    args: list[str], env: dict[str, str], cwd: Path, *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`marquee ARGS` run to its end as a real process."""
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args],
        cwd=cwd,
        env=marquee_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
