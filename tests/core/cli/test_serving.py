"""`marquee serve` and `marquee run` as processes: worker processes that log like Marquee, one
scheduler in the supervisor whatever the worker count, and the port bound before anything else."""

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from core.store.migrate import upgrade
from tests.conftest import fixture_bytes
from tests.support.feed_server import FeedServer
from tests.support.serving import MARQUEE, free_port

STARTED = re.compile(r"INFO uvicorn\.error: Started server process \[(\d+)\]")


def children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def niceness(pid: int, tid: int | None = None) -> int:
    where = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    return int(Path(where).read_text().rsplit(")", 1)[1].split()[16])


def wait_for(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'marquee.db'}"
    upgrade(url)
    return url


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    processes: list[subprocess.Popen[bytes]] = []

    def launch(*args: str, **env: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"server-{len(processes)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [MARQUEE, *args],
                cwd=tmp_path,
                env={**os.environ, **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        return process, log

    yield launch
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def answering(base: str, process: subprocess.Popen[bytes], log: Path) -> Callable[[], bool]:
    def check() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    return check


def test_serve_runs_the_workers_asked_for_each_logging_as_marquee(
    start: Callable[..., tuple[subprocess.Popen[bytes], Path]], sqlite_url: str
) -> None:
    port = free_port()
    process, log = start(
        "serve",
        "--port",
        str(port),
        "--workers",
        "2",
        DATABASE_URL=sqlite_url,
        MARQUEE_PROVIDERS="",
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(answering(base, process, log), 60, "`marquee serve` to answer")
    workers = wait_for(
        lambda: (
            {int(pid) for pid in STARTED.findall(log.read_text())}
            if len(set(STARTED.findall(log.read_text()))) == 2
            else None
        ),
        60,
        "both workers to log their start",
    )
    # Marquee's own line format in each worker: configured there, not only in the supervisor.
    assert workers <= children(process.pid), log.read_text()
    assert "died" not in log.read_text()
    head = httpx.head(f"{base}/search")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(httpx.get(f"{base}/search").content))

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_run_on_a_port_in_use_fails_before_it_fetches_or_writes(
    start: Callable[..., tuple[subprocess.Popen[bytes], Path]],
    sqlite_url: str,
    feed_server: FeedServer,
) -> None:
    url = feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process, log = start(
            "run", "--port", str(port), DATABASE_URL=sqlite_url, MARQUEE_FEVER_URL=url
        )
        assert process.wait(60) == 2
    output = log.read_text()
    assert f"marquee: configuration error: cannot listen on 127.0.0.1:{port}" in output
    assert "Traceback" not in output
    time.sleep(1)  # a scheduler thread, had one started, would have fetched by now
    assert feed_server.hits("/fever") == 0
    engine = sa.create_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM fetch_run")).scalar() == 0
    finally:
        engine.dispose()


def test_run_keeps_one_scheduler_in_the_supervisor_whatever_the_worker_count(
    start: Callable[..., tuple[subprocess.Popen[bytes], Path]],
    sqlite_url: str,
    feed_server: FeedServer,
) -> None:
    url = feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    port = free_port()
    process, log = start(
        "run", "--port", str(port), "--workers", "3", DATABASE_URL=sqlite_url, MARQUEE_FEVER_URL=url
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(answering(base, process, log), 60, "`marquee run` to answer")
    wait_for(
        lambda: len(httpx.get(f"{base}/search").json()["data"]["events"]) == 3,
        60,
        "the embedded scheduler's first fetch",
    )
    wait_for(lambda: len(set(STARTED.findall(log.read_text()))) == 3, 60, "three workers")

    output = log.read_text()
    assert output.count("embedded scheduler started") == 1
    assert feed_server.hits("/fever") == 1
    # Serving happens in worker processes, never in the supervisor that fetches.
    served_by = {int(pid) for pid in STARTED.findall(output)}
    assert process.pid not in served_by and served_by <= children(process.pid)
    assert "died" not in output
    # Fetch threads yield the CPU to the workers; the workers and the supervisor's loop do not.
    assert {niceness(pid) for pid in served_by} == {0}
    threads = {
        int(tid): niceness(process.pid, int(tid)) for tid in os.listdir(f"/proc/{process.pid}/task")
    }
    assert threads.pop(process.pid) == 0
    assert threads and set(threads.values()) == {10}

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in served_by)
