"""MARQUEE_LOG_FORMAT=json: every line each `marquee` process writes, on stdout and on stderr, is a
JSON object: its own log records and result lines, Celery's banner and shutdown notices, Python
warnings, usage errors and uncaught exceptions. Real subprocesses, read line by line."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.store.migrate import upgrade
from tests.conftest import fixture_bytes
from tests.core.scheduling.conftest import REDIS_URL, redis_prefix, wait_for  # noqa: F401
from tests.support.feed_server import Answer, FeedServer
from tests.support.serving import MARQUEE, free_port


def json_lines(text: str, where: str) -> list[dict[str, Any]]:
    """Every line of `text` as a JSON object; fails naming the first line that is not one."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{where} line {number} is not JSON: {line!r}")
        assert isinstance(record, dict), f"{where} line {number} is not a JSON object: {line!r}"
        records.append(record)
    return records


class Output:
    def __init__(self, stdout: str, stderr: str, returncode: int) -> None:
        self.returncode = returncode
        self.stdout = json_lines(stdout, "stdout")
        self.stderr = json_lines(stderr, "stderr")

    def messages(self) -> list[str]:
        return [str(record.get("message", "")) for record in self.stdout + self.stderr]


@pytest.fixture
def json_env(tmp_path: Path, feed_server: FeedServer) -> dict[str, str]:
    database = tmp_path / "marquee.db"
    upgrade(f"sqlite:///{database}")
    feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    return {
        **os.environ,
        "MARQUEE_LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{database}",
        "MARQUEE_FEVER_URL": feed_server.url("/fever"),
    }


def run(args: list[str], env: dict[str, str], cwd: Path) -> Output:
    done = subprocess.run(
        [MARQUEE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    return Output(done.stdout, done.stderr, done.returncode)


@pytest.fixture
def long_running(tmp_path: Path) -> Iterator[Any]:
    """Start a command, wait for `ready` in its output, run `then`, stop it with SIGTERM."""
    started: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], env: dict[str, str], *, ready: str, then: Any = None) -> Output:
        out, err = tmp_path / f"{args[0]}.out", tmp_path / f"{args[0]}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [MARQUEE, *args], env=env, cwd=tmp_path, stdout=stdout, stderr=stderr
            )
        started.append(process)
        wait_for(
            lambda: ready in out.read_text() + err.read_text() or process.poll() is not None,
            timeout=40,
            what=f"marquee {args[0]} to say {ready!r}",
        )
        assert process.poll() is None, out.read_text() + err.read_text()
        if then:
            then()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        return Output(out.read_text(), err.read_text(), process.returncode)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_migrate_writes_only_json_lines(json_env: dict[str, str], tmp_path: Path) -> None:
    fresh = {**json_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}

    output = run(["migrate"], fresh, tmp_path)

    assert output.returncode == 0
    assert [record["revision"] for record in output.stdout] == ["head"]


def test_fetch_prints_its_counts_as_a_json_line(json_env: dict[str, str], tmp_path: Path) -> None:
    output = run(["fetch", "fever"], json_env, tmp_path)

    assert output.returncode == 0
    (report,) = output.stdout
    assert (report["inserted"], report["updated"], report["skipped"]) == (3, 0, 0)
    assert any(record["message"] == "run finished" for record in output.stderr)


def test_failed_fetch_says_so_in_a_json_line(
    json_env: dict[str, str], feed_server: FeedServer, tmp_path: Path
) -> None:
    feed_server.serve("/fever", Answer(b"down", status=503))

    output = run(["fetch", "fever"], json_env, tmp_path)

    assert output.returncode == 1
    assert output.stderr[-1]["message"].startswith("fetch of fever failed: HTTP 503")
    assert output.stderr[-1]["level"] == "ERROR"


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        (["serve", "--port", "0"], {"MARQUEE_BATCH_SIZE": "0"}, "MARQUEE_BATCH_SIZE"),
        (["providers", "--no-such-option"], {}, "unrecognized arguments"),
        (["fetch", "nope"], {}, "unknown provider 'nope'"),
    ],
)
def test_errors_before_a_command_starts_are_json_lines(
    args: list[str], env: dict[str, str], shown: str, json_env: dict[str, str], tmp_path: Path
) -> None:
    output = run(args, {**json_env, **env}, tmp_path)

    assert output.returncode == 2
    assert any(shown in message for message in output.messages())


def test_serve_writes_only_json_lines(
    json_env: dict[str, str], long_running: Any, tmp_path: Path
) -> None:
    port = free_port()

    output = long_running(
        ["serve", "--port", str(port)],
        json_env,
        ready="Application startup complete",
        then=lambda: httpx.get(f"http://127.0.0.1:{port}/search", timeout=5).raise_for_status(),
    )

    # Uvicorn's own records, from the supervisor and from each worker process, are JSON too.
    assert "Started parent process" in " ".join(output.messages())
    assert "Application startup complete." in output.messages()


def test_run_writes_only_json_lines_while_it_fetches(
    json_env: dict[str, str], long_running: Any, feed_server: FeedServer
) -> None:
    port = free_port()

    output = long_running(
        ["run", "--port", str(port)],
        json_env,
        ready="Application startup complete",
        then=lambda: wait_for(lambda: feed_server.hits("/fever"), timeout=30, what="a fetch"),
    )

    assert "run started" in output.messages()


def test_a_plugin_warning_is_a_json_line(json_env: dict[str, str], tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "noisy-0.1.dist-info").mkdir(parents=True)
    (site / "noisy.py").write_text(
        "import warnings\nwarnings.warn('noisy is deprecated', UserWarning)\n"
        "from marquee import hookimpl\n\n@hookimpl\ndef register_providers():\n    return []\n"
    )
    (site / "noisy-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: noisy\nVersion: 0.1\n"
    )
    (site / "noisy-0.1.dist-info" / "entry_points.txt").write_text("[marquee]\nnoisy = noisy\n")

    output = run(["providers"], {**json_env, "PYTHONPATH": str(site)}, tmp_path)

    assert output.returncode == 0
    warning = [record for record in output.stderr if record["logger"] == "py.warnings"]
    assert warning and "noisy is deprecated" in warning[0]["message"]


def test_raw_writes_warnings_and_uncaught_exceptions_are_json_lines(tmp_path: Path) -> None:
    script = (
        "import os, threading, warnings\n"
        "from core.logs.capture import enable_json_output\n"
        "enable_json_output()\n"
        "print('a plain print')\n"
        "os.write(2, b'\\n\\x1b[31mworker: Warm shutdown (MainProcess)\\x1b[0m\\n')\n"
        "warnings.warn('careful')\n"
        "thread = threading.Thread(target=lambda: 1 / 0)\n"
        "thread.start(); thread.join()\n"
        "raise RuntimeError('boom')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )

    output = Output(done.stdout, done.stderr, done.returncode)
    assert output.returncode == 1
    assert output.stdout[0]["message"] == "a plain print"
    messages = output.messages()
    assert "worker: Warm shutdown (MainProcess)" in messages
    assert any("UserWarning: careful" in message for message in messages)
    assert any(m.startswith("uncaught exception in thread") for m in messages)
    crash = [r for r in output.stderr if r["message"] == "uncaught exception: RuntimeError: boom"]
    assert crash and "Traceback" in crash[0]["exception"]


@pytest.fixture
def celery_env(json_env: dict[str, str], redis_prefix: str) -> dict[str, str]:  # noqa: F811
    return {
        **json_env,
        "REDIS_URL": REDIS_URL,
        "MARQUEE_REDIS_KEY_PREFIX": redis_prefix,
        "MARQUEE_CELERY_QUEUE": f"{redis_prefix}json-{os.getpid()}-{time.monotonic_ns()}",
    }


def test_worker_writes_only_json_lines_banner_and_shutdown_included(
    celery_env: dict[str, str], long_running: Any
) -> None:
    options = ["--pool=threads", "--concurrency=1", "--without-gossip", "--without-mingle"]

    output = long_running(["worker", "--", *options], celery_env, ready="ready.")

    messages = output.messages()
    assert any(message.endswith("ready.") for message in messages)
    assert "worker: Warm shutdown (MainProcess)" in messages


def test_beat_writes_only_json_lines(celery_env: dict[str, str], long_running: Any) -> None:
    output = long_running(["beat"], celery_env, ready="beat: Starting")

    assert "beat: Starting..." in output.messages()
