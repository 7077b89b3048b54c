"""`make demo` end to end: the demo script on free ports, its stand-in feed answering the three
sample responses in turn, and `/search` showing the worked example within a minute, never 444."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
WINDOW = {"starts_at": "2021-01-01T00:00:00Z", "ends_at": "2021-12-31T23:59:59Z"}
# The last response's values: 291 ends at 21:30, 1591 at 21:00 again; 322 kept from the first.
LATEST = {
    "Pantomima Full": ("2021-02-10", "21:30:00"),
    "Camela en concierto": ("2021-06-30", "21:30:00"),
    "Los Morancos": ("2021-07-31", "21:00:00"),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_serves_the_worked_example_within_a_minute_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    env = {**os.environ, "MARQUEE_PROVIDERS": "nope", "DATABASE_URL": "mysql://ignored"}
    with log.open("wb") as sink:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py"), "--port", str(port)],
            cwd=tmp_path,
            env=env,  # the demo ignores the shell's Marquee settings
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    seen: list[str] = []
    latest: dict[str, tuple[str, str]] = {}
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and latest != LATEST and demo.poll() is None:
            try:
                events = httpx.get(f"http://127.0.0.1:{port}/search", params=WINDOW, timeout=2)
            except httpx.TransportError:
                time.sleep(0.5)
                continue
            found = events.json()["data"]["events"]
            seen += [event["title"] for event in found]
            latest = {event["title"]: (event["end_date"], event["end_time"]) for event in found}
            time.sleep(0.5)
        output = log.read_text()
        assert latest == LATEST, output
        assert "Tributo a Juanito Valderrama" not in seen
        assert f"curl 'http://127.0.0.1:{port}/search?starts_at=" in output
        assert "the stand-in feed answered response_3.xml" in output

        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert demo.wait(timeout=20) == 0, log.read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "marquee run outlived the demo"
