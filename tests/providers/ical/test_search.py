"""Fever and two iCalendar feeds, fetched over real HTTP into a real database, searched together."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from core.ingest.normalise import event_uuid
from core.ingest.pipeline import FetchReport, fetch_provider
from core.plugins.registry import Registry, load_registry
from core.settings import Settings
from tests.conftest import fixture_bytes
from tests.providers.ical.helpers import ical_bytes
from tests.support.feed_server import FeedServer
from tests.support.spec import assert_matches_spec

NOW = datetime(2021, 1, 15, tzinfo=UTC)


def configure(monkeypatch: pytest.MonkeyPatch, feed_server: FeedServer, **bodies: bytes) -> None:
    """Enable fever plus one iCalendar feed per body, each served by the local feed server."""
    monkeypatch.setenv("MARQUEE_ICAL_FEEDS", ",".join(bodies))
    monkeypatch.setenv("MARQUEE_PROVIDERS", ",".join(["fever", *bodies]))
    fever = feed_server.serve("/fever", fixture_bytes("fever", "response_1.xml"))
    monkeypatch.setenv("MARQUEE_FEVER_URL", fever)
    for name, body in bodies.items():
        monkeypatch.setenv(f"MARQUEE_{name.upper()}_URL", feed_server.serve(f"/{name}.ics", body))


def pinned_registry() -> Registry:
    registry = load_registry(Settings())
    for entry in registry.enabled():
        if entry.plugin.name == "ical":
            entry.provider.clock = lambda: NOW  # type: ignore[attr-defined]
    return registry


def fetch_all(registry: Registry, engine: Engine) -> dict[str, FetchReport]:
    return {entry.name: fetch_provider(entry, engine=engine) for entry in registry.enabled()}


@contextmanager
def api(registry: Registry, engine: Engine) -> Iterator[TestClient]:
    app = create_app(Settings(), engine=engine, registry=registry)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def search(client: TestClient, query: str = "") -> list[dict]:
    response = client.get(f"/search{query}")
    assert response.status_code == 200, response.text
    assert_matches_spec("/search", 200, response.json())
    return response.json()["data"]["events"]


def test_search_merges_fever_and_two_ical_feeds_in_start_order(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    configure(
        monkeypatch,
        feed_server,
        venue_a=ical_bytes("venue_a.ics"),
        venue_b=ical_bytes("venue_b.ics"),
    )
    monkeypatch.setenv("MARQUEE_VENUE_A_TIMEZONE", "Europe/Madrid")
    monkeypatch.setenv("MARQUEE_VENUE_B_TIMEZONE", "America/New_York")
    registry = pinned_registry()

    reports = fetch_all(registry, engine)

    # venue_a: 5 occurrences plus a tentative gig stored but not searchable; venue_b: 1 broken.
    assert (reports["venue_a"].inserted, reports["venue_a"].skipped) == (6, 0)
    assert (reports["venue_b"].inserted, reports["venue_b"].skipped) == (2, 1)
    assert "broken@venue-b.test" in reports["venue_b"].skip_reasons[0]
    with api(registry, engine) as client:
        events = search(client)
        only_a = search(client, "?provider=venue_a")
        a_and_fever = search(client, "?provider=venue_a&provider=fever")

    assert [event["title"] for event in events] == [
        "Venue A: Opening night",  # 19:00Z
        "Pantomima Full",  # 20:00Z
        "Venue B: Late show",  # 23:00Z
        "Venue A: Monthly quiz",
        "Venue A: Monthly quiz",
        "Venue A: Monthly quiz",
        "Venue A: Summer festival",  # from midnight in Madrid, 2021-06-29 22:00Z
        "Camela en concierto",
        "Venue B: Jazz brunch",  # 15:00Z
        "Los Morancos",  # 20:00Z
    ]
    by_title = {event["title"]: event for event in events}
    assert by_title["Venue A: Summer festival"] == {
        "id": str(event_uuid("venue_a", "festival@venue-a.test/2021-06-30")),
        "title": "Venue A: Summer festival",
        "start_date": "2021-06-30",
        "start_time": None,
        "end_date": "2021-07-01",
        "end_time": None,
        "min_price": None,
        "max_price": None,
    }
    late_show = by_title["Venue B: Late show"]  # 23:00Z shown in New York
    assert (late_show["start_date"], late_show["start_time"]) == ("2021-02-10", "18:00:00")
    assert (late_show["end_date"], late_show["end_time"]) == ("2021-02-10", "20:00:00")
    assert [event["start_time"] for event in events if "quiz" in event["title"]] == ["20:30:00"] * 3
    assert [event["title"] for event in only_a] == [
        event["title"] for event in events if event["title"].startswith("Venue A")
    ]
    assert {event["title"] for event in a_and_fever} == {
        event["title"] for event in events if not event["title"].startswith("Venue B")
    }


def test_event_ids_come_from_feed_uid_and_start_and_survive_a_refetch(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    configure(monkeypatch, feed_server, venue_a=ical_bytes("venue_a.ics"))
    monkeypatch.setenv("MARQUEE_VENUE_A_TIMEZONE", "Europe/Madrid")
    registry = pinned_registry()

    fetch_all(registry, engine)
    again = fetch_provider(registry.configured("venue_a"), engine=engine)

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)
    opening = event_uuid("venue_a", "opening@venue-a.test/2021-02-10T19:00:00Z")
    with api(registry, engine) as client:
        response = client.get(f"/events/{opening}")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["event"]["title"] == "Venue A: Opening night"


CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Marquee tests//status over time//EN
BEGIN:VEVENT
UID:gig@venue-a.test
DTSTAMP:20210101T000000Z
SUMMARY:{title}
STATUS:{status}
DTSTART:20210301T200000Z
DTEND:20210301T220000Z
END:VEVENT
END:VCALENDAR
"""


def gig(title: str, status: str) -> bytes:
    return CALENDAR.format(title=title, status=status).encode()


@pytest.mark.parametrize(
    ("versions", "searchable"),
    [
        ([("Gig", "TENTATIVE")], []),
        ([("Gig", "CANCELLED")], []),
        ([("Gig", "TENTATIVE"), ("Gig, confirmed", "CONFIRMED")], ["Gig, confirmed"]),
        ([("Gig", "CONFIRMED"), ("Gig, called off", "CANCELLED")], ["Gig, called off"]),
    ],
    ids=["tentative", "cancelled", "tentative-then-confirmed", "confirmed-then-cancelled"],
)
def test_an_occurrence_is_searchable_once_confirmed_and_stays_so_when_cancelled(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    versions: list[tuple[str, str]],
    searchable: list[str],
) -> None:
    configure(monkeypatch, feed_server, venue_a=b"")
    registry = pinned_registry()
    for title, status in versions:
        feed_server.serve("/venue_a.ics", gig(title, status))
        fetch_provider(registry.configured("venue_a"), engine=engine)

    with api(registry, engine) as client:
        assert [event["title"] for event in search(client, "?provider=venue_a")] == searchable
