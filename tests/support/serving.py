"""A real `marquee serve` in a subprocess, for tests that need the server itself (its processes,
its memory, its sockets): on a free port, logging to a file, stopped afterwards."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

MARQUEE = str(Path(sys.executable).parent / "marquee")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True, slots=True)
class Served:
    base: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def marquee_serve(
    tmp_path: Path, env: Mapping[str, str], *, ready_path: str = "/health", timeout: float = 60
) -> Iterator[Served]:
    """`marquee serve --workers 1` with `env` over this process's environment, once `ready_path`
    answers 200 (a search path there also warms the process); SIGTERM when the block ends."""
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [MARQUEE, "serve", "--port", str(port), "--workers", "1"],
            env={**os.environ, **env}, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_ready(served, ready_path, timeout)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(served: Served, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert served.process.poll() is None, served.log.read_text()
        try:
            if httpx.get(f"{served.base}{path}", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(
        f"marquee serve did not answer {path} in {timeout:g} s\n{served.log.read_text()}"
    )
