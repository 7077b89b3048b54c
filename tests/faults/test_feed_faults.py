"""The feed fault suite: a good feed is stored, then the provider misbehaves, through the real
fetch job (`run_fetch` with the context every trigger builds), on both databases.

A failing case must leave every stored event exactly as it was and show the failure in
`GET /providers`; a value case must store exactly what the strict-parsing rule says and report
the skipped events there. One line per case.
"""

import gzip
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.plugins.registry import load_registry
from core.scheduling.context import build_context
from core.scheduling.job import JobResult, run_fetch
from core.settings import Settings
from core.store.models import Outcome, Trigger
from tests.providers.fever.feeds import base_xml, event_xml, feed_xml, fever_body, stored_rows
from tests.support.fault_feed import FaultFeed, Reply, deflate_of_zeros, gzip_of_zeros

PATH = "/api/events"
TIMEOUT = "1.5"
GOOD = feed_xml(
    base_xml("291", event_xml("291", prices=("20.00", "15.00", "30.00")), title="Camela"),
    base_xml("322", event_xml("1642", prices=("55.00",)), title="Pantomima Full"),
    base_xml("1591", event_xml("1642", prices=("75.00", "65.00")), title="Los Morancos"),
)


def varied(**changes: Any) -> bytes:
    """The good feed with event 291 of base 291 changed as `changes` says."""
    base_changes = {k: changes.pop(k) for k in ("title", "sell_mode") if k in changes}
    event = event_xml("291", **{"prices": ("20.00", "15.00", "30.00"), **changes})
    return GOOD.replace(
        base_xml(
            "291", event_xml("291", prices=("20.00", "15.00", "30.00")), title="Camela"
        ).encode(),
        base_xml("291", event, **{"title": "Camela", **base_changes}).encode(),
    )


@cache
def bomb(kind: str) -> bytes:
    """1 GiB of zeros, compressed to a few kB; built once per session."""
    if kind == "deflate":
        return deflate_of_zeros(1 << 30)
    return gzip_of_zeros(1 << 30, layers=2 if kind == "gzip, gzip" else 1)


def nested(depth: int) -> bytes:
    inner = event_xml("291")[: -len("</event>")] + "<x>" * depth + "</x>" * depth + "</event>"
    return feed_xml(base_xml("291", inner))


def truncated(body: bytes) -> bytes:
    return body[: len(body) // 2]


# (id, reply, what the recorded error says)
FAILURES: list[tuple[str, Callable[[], Reply], str]] = [
    ("400", lambda: Reply(b"bad request", 400), "HTTP 400"),
    ("401", lambda: Reply(b"who are you", 401), "HTTP 401"),
    ("404", lambda: Reply(b"gone", 404), "HTTP 404"),
    ("500", lambda: Reply(b"oops", 500), "HTTP 500"),
    ("502", lambda: Reply(b"bad gateway", 502), "HTTP 502"),
    ("503", lambda: Reply(b"busy", 503, {"Retry-After": "30"}), "HTTP 503"),
    ("429-retry-after", lambda: Reply(b"slow down", 429, {"Retry-After": "7200"}), "HTTP 429"),
    ("hang-before-headers", lambda: Reply(GOOD, delay=30), r"timed out|took longer"),
    ("hang-mid-body", lambda: Reply(GOOD, send=100, then="hang"), r"timed out|took longer"),
    ("drip", lambda: Reply(GOOD, drip=0.05), "took longer than 1.5s"),
    ("reset-mid-body", lambda: Reply(GOOD, send=200, then="reset"), "connection failed"),
    ("cut-short-of-content-length", lambda: Reply(GOOD, send=200), "connection failed"),
    ("content-length-too-long", lambda: Reply(GOOD, length=len(GOOD) + 500), "connection failed"),
    ("content-length-too-short", lambda: Reply(GOOD, length=len(GOOD) // 2), "well-formed"),
    ("cut-unframed-body", lambda: Reply(truncated(GOOD), length=None), "well-formed"),
    ("content-length-over-cap", lambda: Reply(b"x" * 5000, length=10**12), "over the"),
    ("empty-body", lambda: Reply(b""), "well-formed"),
    ("html-maintenance-page", lambda: Reply(b"<html><body>brb</body></html>"), "not a Fever feed"),
    ("gzip-bomb", lambda: Reply(bomb("gzip"), headers={"Content-Encoding": "gzip"}), "cap"),
    (
        "stacked-gzip-bomb",
        lambda: Reply(bomb("gzip, gzip"), headers={"Content-Encoding": "gzip, gzip"}),
        "cap",
    ),
    (
        "deflate-bomb",
        lambda: Reply(bomb("deflate"), headers={"Content-Encoding": "deflate"}),
        "cap",
    ),
    (
        "unknown-encoding",
        lambda: Reply(GOOD, headers={"Content-Encoding": "br"}),
        "unsupported Content-Encoding br",
    ),
    (
        "not-the-gzip-it-claims",
        lambda: Reply(GOOD, headers={"Content-Encoding": "gzip"}),
        "cannot be decoded",
    ),
    (
        "gzip-cut-short",
        lambda: Reply(gzip.compress(GOOD)[:-30], headers={"Content-Encoding": "gzip"}),
        "cannot be decoded",
    ),
    (
        "deflate-then-junk",
        lambda: Reply(zlib.compress(GOOD) + b"junk", headers={"Content-Encoding": "deflate"}),
        "cannot be decoded",
    ),
    ("billion-laughs", lambda: Reply(fever_body("billion_laughs.xml")), "entities"),
    ("external-entity", lambda: Reply(fever_body("external_entity.xml")), "entities"),
    ("malformed-midway", lambda: Reply(fever_body("malformed_midway.xml")), "well-formed"),
    ("million-nested-elements", lambda: Reply(nested(1_000_000)), "deeper than 32 levels"),
    ("huge-tag", lambda: Reply(varied(title="t" * (3 << 20))), "over 1048576 bytes"),
]


@dataclass(frozen=True)
class Stored:
    """What a value case must leave for event 291/291: its stored fields, or None if unchanged."""

    skipped: int
    reason: str
    fields: dict[str, Any] | None = None
    duplicates: int = 0


# (id, body, what is stored and reported)
VALUES: list[tuple[str, Callable[[], bytes], Stored]] = [
    ("price-1_000", lambda: varied(prices=("1_000",)), Stored(1, "'1_000' is not a decimal")),
    ("price-arabic-indic", lambda: varied(prices=("١٢",)), Stored(1, "is not a decimal number")),
    ("price-full-width", lambda: varied(prices=("\uff11\uff12",)), Stored(1, "not a decimal")),
    ("price-exponent", lambda: varied(prices=("1e3",)), Stored(1, "'1e3' is not a decimal")),
    ("price-nan", lambda: varied(prices=("nan",)), Stored(1, "'nan' is not a decimal")),
    ("price-negative", lambda: varied(prices=("-5",)), Stored(1, "negative zone price '-5'")),
    (
        "price-minus-zero",
        lambda: varied(prices=("-0", "4")),
        Stored(0, "", {"min_price": 0.0, "max_price": 4.0}),
    ),
    ("date-only", lambda: varied(start="2021-06-30"), Stored(1, "'2021-06-30': not YYYY")),
    ("iso-week-date", lambda: varied(start="2021-W26-3"), Stored(1, "'2021-W26-3': not YYYY")),
    (
        "offset-date-time",
        lambda: varied(end="2021-06-30T22:00:00+02:00"),
        Stored(1, "invalid event_end_date"),
    ),
    ("sell-mode-upper-case", lambda: varied(sell_mode="ONLINE"), Stored(1, "sell_mode 'ONLINE'")),
    ("base-without-title", lambda: varied(title=""), Stored(1, "missing attribute title")),
    (
        "duplicate-event",
        lambda: GOOD.replace(
            b"</output>", base_xml("291", event_xml("291"), title="Copy").encode() + b"</output>"
        ),
        Stored(1, "duplicate of an earlier event", duplicates=1),
    ),
]


@pytest.fixture
def fetch(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, fault_feed: FaultFeed
) -> Callable[[Reply], JobResult]:
    """One run of the real fetch job against the fault feed; the good feed is stored first."""
    monkeypatch.setenv("MARQUEE_FEVER_URL", fault_feed.url(PATH))
    monkeypatch.setenv("MARQUEE_FEVER_TIMEOUT_SECONDS", TIMEOUT)
    monkeypatch.setenv("MARQUEE_FEVER_MAX_BYTES", str(8 << 20))
    settings = Settings()
    context = build_context(settings, registry=load_registry(settings), engine=engine)

    def run(reply: Reply) -> JobResult:
        fault_feed.serve(PATH, reply)
        return run_fetch(context, "fever", trigger=Trigger.CLI, retry=False)

    assert run(Reply(GOOD)).outcome == Outcome.SUCCESS
    return run


def fever_status(client: TestClient) -> dict[str, Any]:
    providers = client.get("/providers").json()["data"]["providers"]
    return next(provider for provider in providers if provider["name"] == "fever")


@pytest.mark.parametrize(
    ("reply", "error"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES]
)
def test_feed_fault_keeps_stored_events_and_shows_the_failure(
    reply: Callable[[], Reply],
    error: str,
    fetch: Callable[[Reply], JobResult],
    engine: Engine,
    client: TestClient,
) -> None:
    before = stored_rows(engine)

    result = fetch(reply())

    assert result.outcome == Outcome.FAILED
    assert stored_rows(engine) == before
    status = fever_status(client)
    assert status["last_run"]["outcome"] == "failed"
    assert status["consecutive_failures"] == 1
    assert status["events_stored"] == 3
    assert re.search(error, status["last_failure_error"]), status["last_failure_error"]


@pytest.mark.parametrize(("body", "rule"), [c[1:] for c in VALUES], ids=[c[0] for c in VALUES])
def test_feed_value_case_stores_what_the_rule_says_and_reports_the_rest(
    body: Callable[[], bytes],
    rule: Stored,
    fetch: Callable[[Reply], JobResult],
    engine: Engine,
    client: TestClient,
) -> None:
    before = stored_rows(engine)

    result = fetch(Reply(body()))

    assert result.outcome == Outcome.SUCCESS and result.report is not None
    report = result.report
    assert (report.skipped, report.duplicates) == (rule.skipped, rule.duplicates)
    assert all(rule.reason in reason for reason in report.skip_reasons)
    after = stored_rows(engine)
    expected = {**before["291/291"], **(rule.fields or {})}
    if rule.fields:
        assert after["291/291"]["updated_at"] > before["291/291"]["updated_at"]
        expected["updated_at"] = after["291/291"]["updated_at"]
    assert after == {**before, "291/291": expected}
    for name, value in (rule.fields or {}).items():
        assert math.copysign(1, after["291/291"][name]) == math.copysign(1, value), name
    status = fever_status(client)
    assert (status["last_run"]["outcome"], status["last_run"]["skipped"]) == (
        "success",
        rule.skipped,
    )
