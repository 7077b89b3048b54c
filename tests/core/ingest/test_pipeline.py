"""One fetch: ill-typed events from a plugin and unreadable items are skipped and counted, the
rest stored; a duplicated event is stored once, its first copy, whatever the batch size."""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

import pytest
from sqlalchemy.engine import Engine

from core.ingest.pipeline import fetch_provider
from core.plugins.contract import (
    InvalidItem,
    ParsedEvent,
    ParseResult,
    Provider,
    ProviderSettings,
)
from core.plugins.hookspecs import hookimpl
from core.plugins.registry import load_registry
from core.settings import Settings
from tests.providers.fever.feeds import base_xml, event_xml, feed_xml, fetch_fever, stored_rows
from tests.support.feed_server import FeedServer


class CarelessProvider(Provider):
    """Builds events straight from JSON without checking types, as a hasty plugin would."""

    name = "careless"

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        for item in json.load(source):
            if "invalid" in item:
                yield InvalidItem(item["key"], item["invalid"])
                continue
            yield ParsedEvent(
                key=item["key"],
                title=item.get("title", "Show"),
                start=datetime(2021, 6, 30, 21),
                end=datetime(2021, 6, 30, 22),
                on_sale=True,
                min_price=item.get("price", 10.0),
                max_price=item.get("price", 10.0),
            )
        yield "not an event"  # type: ignore[misc]


class CarelessPlugin:
    @hookimpl
    def register_providers(self) -> list[Provider]:
        return [CarelessProvider()]


def fetch_careless(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, items: list[Any]
) -> Any:
    url = feed_server.serve("/careless", json.dumps(items).encode())
    monkeypatch.setenv("MARQUEE_PROVIDERS", "careless")
    monkeypatch.setenv("MARQUEE_CARELESS_URL", url)
    registry = load_registry(Settings(), extra_plugins={"careless": CarelessPlugin()})
    return fetch_provider(registry.configured("careless"), engine=engine)


def test_fetch_skips_ill_typed_events_from_a_plugin_and_stores_the_rest(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    items = [
        {"key": "good-1"},
        {"key": "title-number", "title": 123},
        {"key": "price-list", "price": [1]},
        {"key": "price-huge", "price": 10**400},
        {"key": 42},
        {"key": "nul", "title": "a\u0000b"},
        {"key": "good-2"},
    ]

    report = fetch_careless(monkeypatch, engine, feed_server, items)

    assert sorted(stored_rows(engine)) == ["good-1", "good-2"]
    assert (report.inserted, report.skipped) == (2, 6)
    reasons = "\n".join(report.skip_reasons)
    assert "title-number: title must be text, not int" in reasons
    assert "price-list: min_price must be a number, not list" in reasons
    assert "price-huge: min_price must be a number" in reasons
    assert "?: key must be text, not int" in reasons
    assert "nul: title contains a NUL character" in reasons
    assert "?: provider yielded a str, not a ParsedEvent" in reasons


DUPLICATED = feed_xml(
    base_xml("5", event_xml("1", prices=("10.00",)), title="First copy"),
    base_xml("6", event_xml("1"), event_xml("2")),
    base_xml("5", event_xml("1", prices=("99.00",)), title="Second copy"),
    base_xml("7", event_xml("1")),
    base_xml("5", event_xml("1", prices=("42.00",)), title="Third copy"),
)


@pytest.mark.parametrize("batch_size", [500, 2, 1])
def test_fetch_keeps_the_first_copy_of_a_duplicated_event_whatever_the_batch_size(
    batch_size: int, monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    report = fetch_fever(monkeypatch, engine, feed_server, DUPLICATED, batch_size=batch_size)

    assert (report.inserted, report.updated, report.unchanged) == (4, 0, 0)
    assert (report.duplicates, report.skipped) == (2, 2)
    assert (
        report.skip_reasons
        == ["5/1: duplicate of an earlier event with the same key in this feed; the first is kept"]
        * 2
    )
    row = stored_rows(engine)["5/1"]
    assert (row["title"], row["min_price"]) == ("First copy", 10.0)


@pytest.mark.parametrize("batch_size", [500, 1])
def test_refetch_of_a_feed_with_duplicates_counts_them_as_duplicates_not_updates(
    batch_size: int, monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, DUPLICATED, batch_size=batch_size)
    before = stored_rows(engine)

    again = fetch_fever(monkeypatch, engine, feed_server, DUPLICATED, batch_size=batch_size)

    assert (again.inserted, again.updated, again.unchanged, again.duplicates) == (0, 0, 4, 2)
    assert stored_rows(engine) == before


def test_fetch_counts_each_event_of_a_base_without_a_title_as_skipped(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    body = feed_xml(
        base_xml("1", *(event_xml(str(n)) for n in range(4)), title=None), base_xml("2")
    )

    report = fetch_fever(monkeypatch, engine, feed_server, body)

    assert (report.inserted, report.skipped, report.duplicates) == (1, 4, 0)
    assert len(report.skip_reasons) == 4


def test_fetch_reports_at_most_20_reasons_but_counts_every_skipped_event(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    body = feed_xml(base_xml("1", *(event_xml(str(n), prices=("x",)) for n in range(50))))

    report = fetch_fever(monkeypatch, engine, feed_server, body)

    assert (report.skipped, len(report.skip_reasons)) == (50, 20)


def test_fetch_reports_a_short_excerpt_of_a_long_reason_and_key(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    items = [{"key": "k" * 5000, "invalid": "r" * 100_000}]

    report = fetch_careless(monkeypatch, engine, feed_server, items)

    assert report.skip_reasons[0] == "k" * 200 + ": " + "r" * 300
