"""`GET /search.ics`: the events of a search as an iCalendar feed, for calendar subscriptions.

The same parameters and rules as /search (`search_key`, `search_events`); one VEVENT per event,
UID its id, SUMMARY its title, times as the feed gave them in the provider's zone (TZID, with a
VTIMEZONE), all-day events as DATE values whose DTEND is the day after the last (RFC 5545).
"""

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response
from icalendar import Calendar, Event

from api.deps import RegistryDep, SessionDep
from api.openapi import PROVIDER_PARAMETER, contract
from api.routes import search_key
from core.plugins.registry import ConfiguredProvider, Registry
from core.store.search import search_events

router = APIRouter()

MEDIA_TYPE = "text/calendar"
PRODID = "-//Marquee//Marquee events//EN"
# The query parameters are /search's, so the document shows the contract's own definitions.
HIDDEN = Query(include_in_schema=False)
OPENAPI = {
    "summary": "The events of a search as an iCalendar (RFC 5545) feed, to subscribe to",
    "parameters": [*contract()["paths"]["/search"]["get"]["parameters"], PROVIDER_PARAMETER],
    "responses": {
        "200": {
            "description": "One VEVENT per event /search returns for the same parameters",
            "content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
}


def _zone(registry: Registry, provider: str) -> ZoneInfo | None:
    entry = registry.entries.get(provider)
    # A disabled provider with invalid settings has no known zone: its times stay floating.
    return entry.settings.zone if isinstance(entry, ConfiguredProvider) else None


def _vevent(row: sa.Row[Any], zone: ZoneInfo | None, stamp: datetime) -> Event:
    event = Event.new(uid=str(row.id), summary=row.title, stamp=stamp)
    if row.start_time is None:
        event.start = row.start_date
        event.end = (row.end_date or row.start_date) + timedelta(days=1)
        return event
    event.start = datetime.combine(row.start_date, row.start_time, zone)
    if row.end_date is not None and row.end_time is not None:
        event.end = datetime.combine(row.end_date, row.end_time, zone)
    return event


def _sort_key(item: tuple[sa.Row[Any], ZoneInfo | None]) -> tuple[datetime, str]:
    """/search's order: start instant, then id."""
    row, zone = item
    local = datetime.combine(row.start_date, row.start_time or time(), zone or UTC)
    return local.astimezone(UTC), str(row.id)


def build_calendar(
    events: list[tuple[sa.Row[Any], ZoneInfo | None]], *, stamp: datetime, query: str = ""
) -> bytes:
    # One subscription, one calendar UID, however often it is fetched.
    uid = uuid.uuid5(uuid.NAMESPACE_URL, f"marquee:/search.ics?{query}")
    calendar = Calendar.new(prodid=PRODID, name="Marquee events", uid=uid)
    for row, zone in sorted(events, key=_sort_key):
        calendar.add_component(_vevent(row, zone, stamp))
    if events:
        days = [row.start_date for row, _ in events] + [
            row.end_date or row.start_date for row, _ in events
        ]
        # Transitions around the events only: the default span (1970-2038) bloats every VTIMEZONE.
        calendar.add_missing_timezones(
            first_date=min(days) - timedelta(days=366), last_date=max(days) + timedelta(days=366)
        )
    return calendar.to_ical()


@router.get(
    "/search.ics",
    operation_id="searchEventsCalendar",
    response_class=Response,
    openapi_extra=OPENAPI,
)
def search_calendar(
    request: Request,
    session: SessionDep,
    registry: RegistryDep,
    starts_at: Annotated[str | None, HIDDEN] = None,
    ends_at: Annotated[str | None, HIDDEN] = None,
    provider: Annotated[list[str] | None, HIDDEN] = None,
) -> Response:
    key = search_key(registry, starts_at, ends_at, provider or [])
    events = [
        (row, _zone(registry, name))
        for name in key.providers
        for row in search_events(
            session=session, starts_at=key.starts_at, ends_at=key.ends_at, providers=[name]
        )
    ]
    stamp = datetime.now(UTC).replace(microsecond=0)
    body = build_calendar(events, stamp=stamp, query=str(request.query_params))
    return Response(content=body, media_type=MEDIA_TYPE)
