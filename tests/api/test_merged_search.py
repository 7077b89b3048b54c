"""/search over several providers at once: Fever (built in) and the example plugin (installed as a
third party), both fetched over HTTP from a local server, merged in one order by instant."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from core.ingest.pipeline import fetch_provider
from core.plugins.registry import load_registry
from core.settings import Settings
from tests.conftest import fixture_bytes
from tests.support.feed_server import FeedServer
from tests.support.spec import assert_matches_spec, spec

# Madrid wall-clock times, chosen to interleave with the Fever fixture's UTC times.
EXAMPLE_FEED = {
    "events": [
        {"id": "early", "title": "Example early", "start": "2021-01-15T10:00:00", "prices": [5]},
        # 22:30 in Madrid is 20:30 UTC: before Camela's 21:00 UTC despite the later wall clock.
        {"id": "night", "title": "Example Madrid night", "start": "2021-06-30T22:30:00"},
        # All day on 31 July in Madrid starts at 22:00 UTC on the 30th.
        {"id": "fair", "title": "Example all-day fair", "start": "2021-07-31", "end": "2021-07-31"},
        {
            "id": "gone",
            "title": "Example sold out",
            "start": "2021-03-01T20:00",
            "status": "sold_out",
        },
        {"id": "late", "title": "Example late", "start": "2021-12-31T23:00:00", "prices": [9, 19]},
    ]
}
EXAMPLE_TITLES = ["Example early", "Example Madrid night", "Example all-day fair", "Example late"]
MERGED_TITLES = [
    "Example early",
    "Pantomima Full",
    "Example Madrid night",
    "Camela en concierto",
    "Example all-day fair",
    "Los Morancos",
    "Example late",
]
SUMMARY_KEYS = set(spec()["components"]["schemas"]["EventSummary"]["properties"])


def app_client(engine: Engine) -> Iterator[TestClient]:
    settings = Settings()
    app = create_app(settings, engine=engine, registry=load_registry(settings))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def merged(
    settings: Settings,
    engine: Engine,
    feed_server: FeedServer,
    with_example_plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    """Both providers enabled and fetched once, the way `marquee fetch` would."""
    monkeypatch.setenv("MARQUEE_PROVIDERS", "fever,example_json")
    monkeypatch.setenv(
        "MARQUEE_FEVER_URL", feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    )
    monkeypatch.setenv(
        "MARQUEE_EXAMPLE_JSON_URL",
        feed_server.serve("/events.json", json.dumps(EXAMPLE_FEED).encode()),
    )
    monkeypatch.setenv("MARQUEE_EXAMPLE_JSON_TIMEZONE", "Europe/Madrid")
    registry = load_registry(Settings())
    for name in ("fever", "example_json"):
        fetch_provider(registry.configured(name), engine=engine)
    yield from app_client(engine)


def titles(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [event["title"] for event in response.json()["data"]["events"]]


def test_search_merges_every_enabled_provider_in_one_order_by_instant(
    merged: TestClient, feed_server: FeedServer
) -> None:
    response = merged.get("/search")
    assert response.status_code == 200
    assert titles(response) == MERGED_TITLES
    assert_matches_spec("/search", 200, response.json())
    assert all(set(event) == SUMMARY_KEYS for event in response.json()["data"]["events"])
    assert feed_server.hits("/events.json") == 1


def test_search_shows_example_events_as_local_wall_clock_with_prices(merged: TestClient) -> None:
    events = {
        e["title"]: e for e in merged.get("/search?provider=example_json").json()["data"]["events"]
    }
    assert events["Example Madrid night"]["start_time"] == "22:30:00"
    assert events["Example all-day fair"]["start_time"] is None
    assert events["Example all-day fair"]["end_date"] == "2021-07-31"
    assert (events["Example late"]["min_price"], events["Example late"]["max_price"]) == (9, 19)


def test_provider_parameter_narrows_search_to_the_named_providers(merged: TestClient) -> None:
    only_example = merged.get("/search", params={"provider": "example_json"})
    assert only_example.status_code == 200
    assert titles(only_example) == EXAMPLE_TITLES
    assert_matches_spec("/search", 200, only_example.json())

    only_fever = merged.get("/search", params={"provider": ["fever", "fever"]})
    assert titles(only_fever) == ["Pantomima Full", "Camela en concierto", "Los Morancos"]

    both = merged.get("/search", params={"provider": ["example_json", "fever"]})
    assert titles(both) == MERGED_TITLES


def test_provider_parameter_combines_with_the_time_range(merged: TestClient) -> None:
    response = merged.get(
        "/search",
        params={
            "provider": "example_json",
            "starts_at": "2021-06-01T00:00:00Z",
            "ends_at": "2021-08-01T00:00:00Z",
        },
    )
    assert titles(response) == ["Example Madrid night", "Example all-day fair"]


@pytest.mark.parametrize("names", [["nosuch"], ["fever", "nosuch"]])
def test_unknown_provider_is_a_400_in_the_spec_envelope(
    merged: TestClient, names: list[str]
) -> None:
    response = merged.get("/search", params={"provider": names})
    assert response.status_code == 400
    body = response.json()
    assert_matches_spec("/search", 400, body)
    assert body["data"] is None
    assert body["error"]["code"] == "unknown_provider"
    assert "nosuch" in body["error"]["message"]


def test_search_leaves_out_providers_no_longer_enabled(
    merged: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_PROVIDERS", "fever")
    for client in app_client(engine):
        response = client.get("/search")
        assert titles(response) == ["Pantomima Full", "Camela en concierto", "Los Morancos"]
        assert_matches_spec("/search", 200, response.json())
