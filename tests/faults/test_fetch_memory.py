"""Peak memory of a real `marquee fetch fever` process at default settings, whatever the body:
each case is a fresh subprocess, measured by the kernel (wait4's ru_maxrss), never by timing.

The bound is 150 MB, of which importing Marquee takes about 80.
"""

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.plugins.contract import ProviderSettings
from tests.providers.fever.feeds import base_xml, event_xml
from tests.support.fault_feed import FaultFeed, Reply, deflate_of_zeros, gzip_of_zeros
from tests.support.serving import MARQUEE

PEAK_MB = 150
DEFAULT_CAP = ProviderSettings.model_fields["max_bytes"].default
GIB = 1 << 30
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<eventList version="1.0"><output>\n'
TAIL = "</output></eventList>\n"


@dataclass
class Fetched:
    returncode: int
    peak_mb: float
    report: dict | None
    stderr: str


# Runs the command and reports its peak RSS: a fresh, small parent, because a child spawned
# straight from pytest inherits pytest's own high-water mark through vfork.
DRIVER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([done.returncode, done.stdout, done.stderr, peak]))
"""


def fetch_process(url: str, database_url: str, cwd: Path) -> Fetched:
    """`marquee fetch fever --json` at default settings but the URL, with its own peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARQUEE_", "DATABASE_"))}
    env.pop("REDIS_URL", None)
    env.update(DATABASE_URL=database_url, MARQUEE_FEVER_URL=url, MARQUEE_LOG_LEVEL="WARNING")
    driver = subprocess.run(
        [sys.executable, "-c", DRIVER, MARQUEE, "fetch", "fever", "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    code, stdout, stderr, peak_kb = json.loads(driver.stdout)
    report = json.loads(stdout) if code == 0 and stdout.strip() else None
    return Fetched(code, peak_kb / 1024, report, stderr)


def write(path: Path, bases: Callable[[], object]) -> Path:
    with path.open("w", encoding="utf-8") as feed:
        feed.write(HEAD)
        for chunk in bases():  # type: ignore[attr-defined]
            feed.write(chunk)
        feed.write(TAIL)
    return path


def one_base(events: int) -> Callable[[], object]:
    def chunks():  # type: ignore[no-untyped-def]
        yield '<base_event base_event_id="1" sell_mode="online" title="Big">'
        for n in range(events):
            yield event_xml(str(n))
        yield "</base_event>"

    return chunks


def spread(events: int) -> Callable[[], object]:
    return lambda: (base_xml(str(n)) for n in range(events))


def nested(depth: int) -> Callable[[], object]:
    return lambda: iter(
        [
            base_xml(
                "1", event_xml()[: -len("</event>")] + "<x>" * depth + "</x>" * depth + "</event>"
            )
        ]
    )


def huge_tag(size: int) -> Callable[[], object]:
    def chunks():  # type: ignore[no-untyped-def]
        yield '<base_event base_event_id="1" sell_mode="online" title="'
        for _ in range(size >> 20):
            yield "t" * (1 << 20)
        yield '">' + event_xml() + "</base_event>"

    return chunks


ZONE = '<zone zone_id="{z:04d}" capacity="100" price="{p:03d}.00" name="Zone {z:04d}" numbered="true"/>'


def zones_to_fill(events: int, cap: int) -> int:
    """Zones per event for `events` events to come within 1 MiB of `cap` bytes."""
    per_event = len(event_xml("00000", prices=())) + len(base_xml("00000", "")) - len("<zone/>")
    per_zone = len(ZONE.format(z=0, p=0))
    return (cap - (1 << 20) - len(HEAD) - len(TAIL) - events * per_event) // (events * per_zone)


def biggest_accepted(events: int) -> tuple[int, Callable[[], object]]:
    zones = zones_to_fill(events, DEFAULT_CAP)
    zone_xml = "".join(ZONE.format(z=z, p=10 + z % 900) for z in range(zones))
    event = event_xml("{n}", prices=()).replace("</event>", zone_xml + "</event>")
    return zones, lambda: (base_xml(str(n), event.replace("{n}", str(n))) for n in range(events))


@pytest.fixture
def default_database(sqlite_template: Path, tmp_path: Path) -> str:
    """The default settings' database, SQLite, migrated: for the cases refused before any write
    and the one whose few rows leave the database no part in its memory."""
    path = tmp_path / "marquee.db"
    template, copy = sqlite3.connect(sqlite_template), sqlite3.connect(path)
    try:
        template.backup(copy)
    finally:
        copy.close()
        template.close()
    return f"sqlite:///{path}"


@pytest.fixture
def fault_feed_url(fault_feed: FaultFeed) -> Callable[[Reply], str]:
    return lambda reply: fault_feed.serve("/api/events", reply)


REFUSED = [
    ("gzip-bomb-1gib", lambda: gzip_of_zeros(GIB), "gzip", "cap"),
    ("stacked-gzip-bomb-1gib", lambda: gzip_of_zeros(GIB, layers=2), "gzip, gzip", "cap"),
    ("deflate-bomb-1gib", lambda: deflate_of_zeros(GIB), "deflate", "cap"),
]


@pytest.mark.parametrize(
    ("build", "encoding", "error"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_fetch_of_a_compression_bomb_fails_within_the_memory_bound(
    build: Callable[[], bytes],
    encoding: str,
    error: str,
    fault_feed_url: Callable[[Reply], str],
    default_database: str,
    tmp_path: Path,
) -> None:
    url = fault_feed_url(Reply(build(), headers={"Content-Encoding": encoding}))

    fetched = fetch_process(url, default_database, tmp_path)

    assert fetched.returncode != 0 and error in fetched.stderr
    assert fetched.peak_mb < PEAK_MB


@pytest.mark.parametrize(
    ("bases", "error"),
    [(nested(1_000_000), "deeper than"), (huge_tag(200 << 20), "over 1048576 bytes")],
    ids=["million-nested-elements", "tag-of-200-mib"],
)
def test_fetch_of_a_hostile_document_fails_within_the_memory_bound(
    bases: Callable[[], object],
    error: str,
    fault_feed_url: Callable[[Reply], str],
    default_database: str,
    tmp_path: Path,
) -> None:
    url = fault_feed_url(Reply(write(tmp_path / "feed.xml", bases)))

    fetched = fetch_process(url, default_database, tmp_path)

    assert fetched.returncode != 0 and error in fetched.stderr
    assert fetched.peak_mb < PEAK_MB


@pytest.mark.parametrize(
    "bases", [one_base(100_000), spread(100_000)], ids=["in-one-base", "one-per-base"]
)
def test_fetch_of_100k_events_stays_within_the_memory_bound(
    bases: Callable[[], object],
    fault_feed_url: Callable[[Reply], str],
    database_url: str,
    tmp_path: Path,
) -> None:
    url = fault_feed_url(Reply(write(tmp_path / "feed.xml", bases)))

    fetched = fetch_process(url, database_url, tmp_path)

    assert fetched.report is not None, fetched.stderr
    assert (fetched.report["inserted"], fetched.report["skipped"]) == (100_000, 0)
    assert fetched.peak_mb < PEAK_MB


def test_default_cap_accepts_5000_events_of_500_zones_and_its_biggest_feed_stays_in_bounds(
    fault_feed_url: Callable[[Reply], str], default_database: str, tmp_path: Path
) -> None:
    zones, bases = biggest_accepted(5_000)
    assert zones >= 500, f"the default cap holds only {zones} zones per event"
    feed = write(tmp_path / "feed.xml", bases)
    assert DEFAULT_CAP - (2 << 20) < feed.stat().st_size <= DEFAULT_CAP

    fetched = fetch_process(fault_feed_url(Reply(feed)), default_database, tmp_path)

    assert fetched.report is not None, fetched.stderr
    assert (fetched.report["inserted"], fetched.report["skipped"]) == (5_000, 0)
    assert fetched.peak_mb < PEAK_MB
