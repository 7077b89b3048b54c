"""`GET /search.ics`: the same events as /search, as an iCalendar feed a calendar app subscribes to,
compared event by event on both databases, with an all-day event and providers in three zones."""

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.providers.ical.helpers import ical_bytes
from tests.providers.ical.test_search import api, configure, fetch_all, pinned_registry, search
from tests.support.feed_server import FeedServer

ZONES = {"fever": "UTC", "venue_a": "Europe/Madrid", "venue_b": "America/New_York"}


@pytest.fixture
def calendar_client(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> Any:
    configure(
        monkeypatch,
        feed_server,
        venue_a=ical_bytes("venue_a.ics"),
        venue_b=ical_bytes("venue_b.ics"),
    )
    for name, zone in ZONES.items():
        monkeypatch.setenv(f"MARQUEE_{name.upper()}_TIMEZONE", zone)
    registry = pinned_registry()
    fetch_all(registry, engine)
    with api(registry, engine) as client:
        yield client


def calendar(client: TestClient, query: str = "") -> icalendar.Calendar:
    response = client.get(f"/search.ics{query}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return icalendar.Calendar.from_ical(response.content)


def local(value: date | datetime) -> tuple[str, str | None]:
    if isinstance(value, datetime):
        return value.date().isoformat(), value.time().isoformat(timespec="seconds")
    return value.isoformat(), None


def test_calendar_has_one_vevent_per_searched_event_with_its_local_times_and_zone(
    calendar_client: TestClient,
) -> None:
    events = search(calendar_client)
    feed = calendar(calendar_client)
    vevents = feed.walk("VEVENT")

    assert [str(vevent["UID"]) for vevent in vevents] == [event["id"] for event in events]
    for event, vevent in zip(events, vevents, strict=True):
        assert str(vevent["SUMMARY"]) == event["title"]
        start, end = vevent.decoded("DTSTART"), vevent.decoded("DTEND")
        assert local(start) == (event["start_date"], event["start_time"])
        if event["start_time"] is None:  # all day: DATE values, DTEND the day after the last
            assert type(start) is date and type(end) is date
            assert end == date.fromisoformat(event["end_date"]) + timedelta(days=1)
        else:
            assert local(end) == (event["end_date"], event["end_time"])
            assert start.tzinfo is not None and end.tzinfo is not None
    assert "DTSTAMP" in vevents[0]


def test_calendar_times_carry_each_providers_zone_with_a_vtimezone(
    calendar_client: TestClient,
) -> None:
    feed = calendar(calendar_client)
    text = feed.to_ical().decode()
    by_title = {str(vevent["SUMMARY"]): vevent for vevent in feed.walk("VEVENT")}

    assert by_title["Venue A: Opening night"]["DTSTART"].params["TZID"] == "Europe/Madrid"
    assert by_title["Venue B: Late show"]["DTSTART"].params["TZID"] == "America/New_York"
    assert {str(tz["TZID"]) for tz in feed.walk("VTIMEZONE")} == {
        "Europe/Madrid",
        "America/New_York",
    }
    # Fever's zone is UTC: its times are UTC instants, which need no VTIMEZONE.
    camela = by_title["Camela en concierto"].decoded("DTSTART")
    assert camela == datetime(2021, 6, 30, 21, 0, tzinfo=ZoneInfo("UTC"))
    late_show = by_title["Venue B: Late show"].decoded("DTSTART")
    assert late_show.astimezone(ZoneInfo("UTC")) == datetime(
        2021, 2, 10, 23, tzinfo=ZoneInfo("UTC")
    )
    assert "DTSTART;TZID=America/New_York:20210210T180000" in text
    assert "DTSTART;VALUE=DATE:20210630" in text and "DTEND;VALUE=DATE:20210702" in text


@pytest.mark.parametrize(
    "query",
    [
        "?provider=venue_a",
        "?provider=venue_b&provider=fever",
        "?starts_at=2021-03-01T00:00:00Z&ends_at=2021-06-30T23:59:59Z",
        "?starts_at=2030-01-01T00:00:00Z",
    ],
)
def test_calendar_answers_the_same_events_as_search_for_the_same_parameters(
    calendar_client: TestClient, query: str
) -> None:
    uids = [str(vevent["UID"]) for vevent in calendar(calendar_client, query).walk("VEVENT")]

    assert uids == [event["id"] for event in search(calendar_client, query)]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("?starts_at=tomorrow", "invalid_parameter"),
        ("?starts_at=2021-07-01T00:00:00Z&ends_at=2021-01-01T00:00:00Z", "invalid_range"),
        ("?provider=nope", "unknown_provider"),
    ],
)
def test_calendar_errors_come_in_the_json_envelope_as_search_errors_do(
    calendar_client: TestClient, query: str, code: str
) -> None:
    response = calendar_client.get(f"/search.ics{query}")

    assert response.status_code == 400
    assert response.json() == {
        "data": None,
        "error": {**response.json()["error"], "code": code},
    }
    assert response.json()["error"] == calendar_client.get(f"/search{query}").json()["error"]


def test_calendar_route_is_documented_with_the_search_parameters(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/search.ics"]["get"]

    assert [p["name"] for p in operation["parameters"]] == ["starts_at", "ends_at", "provider"]
    assert operation["parameters"] == document["paths"]["/search"]["get"]["parameters"]
    assert "text/calendar" in operation["responses"]["200"]["content"]
    assert {"400", "500"} <= set(operation["responses"])
