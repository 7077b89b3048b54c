"""One fetch through a plugin that yields ill-typed events: those are skipped, the rest stored."""

import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

import pytest
from sqlalchemy.engine import Engine

from core.ingest.pipeline import fetch_provider
from core.plugins.contract import ParsedEvent, ParseResult, Provider, ProviderSettings
from core.plugins.hookspecs import hookimpl
from core.plugins.registry import load_registry
from core.settings import Settings
from tests.providers.fever.feeds import stored_rows
from tests.support.feed_server import FeedServer


class CarelessProvider(Provider):
    """Builds events straight from JSON without checking types, as a hasty plugin would."""

    name = "careless"

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        for item in json.load(source):
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
