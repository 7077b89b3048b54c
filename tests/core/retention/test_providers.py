"""Inactivity is counted on the event's own provider's clock: its latest successful fetch. A
provider that is down ages nothing; a per-provider override wins over the global stage."""

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy.engine import Engine

from core.errors import FeedError, ProviderError
from core.ingest.pipeline import FetchReport, fetch_provider
from core.plugins.contract import ParsedEvent, ParseResult, Provider, ProviderSettings
from core.plugins.hookspecs import hookimpl
from core.plugins.registry import load_registry
from core.settings import Settings
from tests.core.retention.helpers import (
    age_absent,
    event_id,
    feed,
    fetch,
    hidden,
    ids,
    last_success_at,
    moved,
    retain,
    served,
    wall_clock_passes,
)
from tests.support.feed_server import Answer, FeedServer


class SecondProvider(Provider):
    """Another provider: a JSON list of keys, every one an event on sale."""

    name = "second"

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        for item in json.load(source):
            yield ParsedEvent(
                key=item,
                title=f"Second {item}",
                start=datetime(2021, 6, 30, 21),
                end=None,
                on_sale=True,
                min_price=5.0,
                max_price=5.0,
            )


class SecondPlugin:
    @hookimpl
    def register_providers(self) -> list[Provider]:
        return [SecondProvider()]


PLUGINS: dict[str, object] = {"second": SecondPlugin()}


@pytest.fixture
def two_providers(monkeypatch: pytest.MonkeyPatch, feed_server: FeedServer) -> None:
    monkeypatch.setenv("MARQUEE_PROVIDERS", "fever,second")
    monkeypatch.setenv("MARQUEE_SECOND_URL", feed_server.url("/second"))


def fetch_second(engine: Engine, feed_server: FeedServer, *keys: str) -> FetchReport:
    feed_server.serve("/second", json.dumps(list(keys)).encode())
    entry = load_registry(Settings(), extra_plugins=PLUGINS).configured("second")
    return fetch_provider(entry, engine=engine)


def second_id(key: str):  # type: ignore[no-untyped-def]
    from core.ingest.normalise import event_uuid

    return event_uuid("second", key)


def both_drop_an_event(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    """Fever's feed drops event 2 and second's drops b: each provider has one absent event."""
    fetch(monkeypatch, engine, feed_server, feed(1, 2), extra_plugins=PLUGINS)
    fetch(monkeypatch, engine, feed_server, feed(1), extra_plugins=PLUGINS)
    fetch_second(engine, feed_server, "a", "b")
    fetch_second(engine, feed_server, "a")


def test_a_provider_that_is_down_ages_nothing_until_it_succeeds_again(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "1")
    fetch(monkeypatch, engine, feed_server, feed(1, 2))
    fetch(monkeypatch, engine, feed_server, feed(1))
    latest = last_success_at(engine)

    # Ten days of failed fetches: the feed answers 503, then garbage, then a broken document.
    failures = [Answer(b"busy", status=503), Answer(b"\x00garbage\xff"), Answer(feed(1)[:-40])]
    for answer in failures:
        with pytest.raises(ProviderError):
            fetch(monkeypatch, engine, feed_server, answer)
    assert last_success_at(engine) == latest
    wall_clock_passes(engine, 10)

    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert served(engine) == ids(1, 2)

    # The provider is back: 2 has been missing from its feed for ten days of its fetches.
    fetch(monkeypatch, engine, feed_server, feed(1))
    assert moved(retain(engine)["fever"]) == (1, 0, 0)
    assert hidden(engine) == ids(2)


def test_a_failed_fetch_records_no_presence(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    """A feed that fails midway (after some events were read) leaves presence as it was: the
    events it did not reach are not marked absent."""
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    fetch(monkeypatch, engine, feed_server, feed(1, 2, 3))

    with pytest.raises(FeedError):
        fetch(monkeypatch, engine, feed_server, feed(1, 2, 3)[:-60])

    assert moved(retain(engine)["fever"]) == (0, 0, 0)
    assert served(engine) == ids(1, 2, 3)


def test_each_provider_ages_on_its_own_fetches(
    two_providers: None,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    archive_dir: Path,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "2")
    both_drop_an_event(monkeypatch, engine, feed_server)
    # Fever keeps fetching for three more days; second is down all that time.
    age_absent(engine, 3, provider="fever")
    wall_clock_passes(engine, 3, provider="second")
    fetch(monkeypatch, engine, feed_server, feed(1), extra_plugins=PLUGINS)

    results = retain(engine, extra_plugins=PLUGINS)

    assert moved(results["fever"]) == (1, 0, 0)
    assert moved(results["second"]) == (0, 0, 0)
    assert hidden(engine) == {event_id(2)}


@pytest.mark.parametrize(
    ("global_days", "own_days", "fever_hidden", "second_hidden"),
    [("10", "1", True, False), ("1", "10", False, True)],
)
def test_a_provider_override_wins_over_the_global_stage_for_that_provider_only(
    global_days: str,
    own_days: str,
    fever_hidden: bool,
    second_hidden: bool,
    two_providers: None,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    archive_dir: Path,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", global_days)
    monkeypatch.setenv("MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS", own_days)
    both_drop_an_event(monkeypatch, engine, feed_server)
    age_absent(engine, 5, provider="fever")
    age_absent(engine, 5, provider="second")

    results = retain(engine, extra_plugins=PLUGINS)

    assert results["fever"].policy.hide == int(own_days)
    assert results["second"].policy.hide == int(global_days)
    expected = {event_id(2)} if fever_hidden else set()
    if second_hidden:
        expected.add(second_id("b"))
    assert hidden(engine) == expected


def test_an_override_can_turn_on_a_stage_the_global_policy_leaves_off(
    two_providers: None,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    archive_dir: Path,
) -> None:
    monkeypatch.setenv("MARQUEE_SECOND_RETENTION_HIDE_AFTER_DAYS", "0")
    both_drop_an_event(monkeypatch, engine, feed_server)

    results = retain(engine, extra_plugins=PLUGINS)

    assert results["fever"].outcome == "skipped"
    assert moved(results["second"]) == (1, 0, 0)
    assert hidden(engine) == {second_id("b")}


def test_provider_option_limits_the_pass_to_that_provider(
    two_providers: None,
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    archive_dir: Path,
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    both_drop_an_event(monkeypatch, engine, feed_server)

    results = retain(engine, providers=["second"], extra_plugins=PLUGINS)

    assert list(results) == ["second"]
    assert hidden(engine) == {second_id("b")}
