"""The Fever parse in bounded memory whatever the document: it streams expat events in the calling
thread, item by item, and refuses or skips what no Fever feed holds (deep nesting, huge tags,
DTD declarations, oversized bases and events)."""

import io
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from core.errors import FeedError
from core.plugins.contract import InvalidItem, ParsedEvent, ParseResult
from providers.fever.parser import MAX_DEPTH, MAX_TOKEN_BYTES
from providers.fever.plugin import FeverProvider
from tests.providers.fever.feeds import base_xml, event_xml, feed_xml

HEAD = b'<?xml version="1.0"?><eventList><output><base_event base_event_id="1" sell_mode="online" title="T">'
TAIL = b"</base_event></output></eventList>"


def results(source: io.BytesIO) -> Iterator[ParseResult]:
    provider = FeverProvider()
    return provider.parse(provider.load_settings(), source)


def parse(body: bytes) -> list[ParseResult]:
    return list(results(io.BytesIO(body)))


def peak_traced(body: bytes) -> tuple[int, list[ParseResult] | Exception]:
    """Peak memory Python allocated while parsing `body` (the body itself excluded), and what the
    parse gave: a count of results kept as the first few, or the error it raised."""
    source = io.BytesIO(body)
    kept: list[ParseResult] = []
    tracemalloc.start()
    try:
        for result in results(source):
            if len(kept) < 3:
                kept.append(result)
        outcome: list[ParseResult] | Exception = kept
    except FeedError as exc:
        outcome = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak, outcome


def nested(depth: int) -> bytes:
    return HEAD + event_xml()[:-8].encode() + b"<x>" * depth + b"</x>" * depth + b"</event>" + TAIL


def test_parse_streams_in_the_calling_thread_yielding_events_before_the_end() -> None:
    body = feed_xml(*(base_xml(str(n)) for n in range(5000)))
    source = io.BytesIO(body)
    threads = threading.active_count()

    items = results(source)
    first = next(items)

    assert isinstance(first, ParsedEvent) and first.key == "0/1"
    assert source.tell() < len(body) / 4
    assert threading.active_count() == threads
    items.close()  # type: ignore[attr-defined]


def test_parse_accepts_unknown_elements_and_nesting_within_the_depth_limit() -> None:
    extra = "<extra>" * (MAX_DEPTH - 5) + "</extra>" * (MAX_DEPTH - 5)
    body = feed_xml(
        "<notice>maintenance tonight</notice>",
        base_xml("1", event_xml().replace("</event>", extra + "</event>")),
    )

    [event] = parse(body)

    assert isinstance(event, ParsedEvent) and event.key == "1/1"


def test_parse_refuses_elements_nested_deeper_than_the_limit() -> None:
    with pytest.raises(FeedError, match=f"nests elements deeper than {MAX_DEPTH} levels"):
        parse(nested(MAX_DEPTH))


def test_parse_refuses_a_million_nested_elements_in_bounded_memory() -> None:
    peak, outcome = peak_traced(nested(1_000_000))

    assert isinstance(outcome, FeedError) and "deeper than" in str(outcome)
    assert peak < 8 << 20


def test_parse_of_a_base_with_100k_events_runs_in_bounded_memory() -> None:
    body = HEAD + "".join(event_xml(str(n)) for n in range(100_000)).encode() + TAIL

    peak, outcome = peak_traced(body)

    assert isinstance(outcome, list) and [r.key for r in outcome] == ["1/0", "1/1", "1/2"]
    assert peak < 8 << 20


def test_parse_refuses_a_tag_larger_than_the_limit_in_bounded_memory() -> None:
    title = "x" * (MAX_TOKEN_BYTES * 4)
    body = feed_xml(base_xml("1", title=title))

    peak, outcome = peak_traced(body)

    assert isinstance(outcome, FeedError)
    assert f"over {MAX_TOKEN_BYTES} bytes" in str(outcome)
    assert peak < 4 * MAX_TOKEN_BYTES


def test_parse_refuses_dtd_declarations_inside_the_document() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE eventList [<!ATTLIST base_event title CDATA "x">]>'
        + feed_xml(base_xml("1"))[len(b'<?xml version="1.0" encoding="UTF-8"?>') :]
    )

    with pytest.raises(FeedError, match="DTD declarations"):
        parse(body)


def test_parse_skips_events_of_a_base_past_max_events_per_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_MAX_EVENTS_PER_BASE", "3")
    body = feed_xml(base_xml("1", *(event_xml(str(n)) for n in range(5))), base_xml("2"))

    found = parse(body)

    assert [(r.key, isinstance(r, ParsedEvent)) for r in found] == [
        ("1/0", True),
        ("1/1", True),
        ("1/2", True),
        ("1/3", False),
        ("1/4", False),
        ("2/1", True),
    ]
    assert isinstance(found[3], InvalidItem)
    assert found[3].reason == "base holds more than 3 events (MAX_EVENTS_PER_BASE)"


def test_parse_skips_an_event_with_more_zones_than_max_zones_per_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_MAX_ZONES_PER_EVENT", "4")
    body = feed_xml(
        base_xml("1", event_xml("1", prices=("1",) * 4), event_xml("2", prices=("1",) * 5))
    )

    kept, skipped = parse(body)

    assert isinstance(kept, ParsedEvent) and kept.key == "1/1"
    assert isinstance(skipped, InvalidItem) and skipped.key == "1/2"
    assert skipped.reason == "event has more than 4 zones (MAX_ZONES_PER_EVENT)"
