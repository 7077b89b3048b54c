"""An iCalendar document to ParsedEvents: check every VEVENT, then expand each series (one UID: the
master and its RECURRENCE-ID overrides) with recurring-ical-events inside a bounded window."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO
from zoneinfo import ZoneInfo

import recurring_ical_events
import x_wr_timezone
from icalendar import Calendar, Component

from marquee import FeedError, InvalidItem, ParseResult
from providers.ical.vevent import instant, label, problem, to_event


@dataclass(frozen=True, slots=True)
class Window:
    """Occurrences ending at or after `start` and starting at or before `end` are produced; of a
    series with more than `max_occurrences`, the upcoming ones (ending at or after `now`) first."""

    now: datetime
    start: datetime
    end: datetime
    max_occurrences: int

    @classmethod
    def around(
        cls, now: datetime, *, past_days: int, horizon_days: int, max_occurrences: int
    ) -> "Window":
        if now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        return cls(
            now=now,
            start=now - timedelta(days=past_days),
            end=now + timedelta(days=horizon_days),
            max_occurrences=max_occurrences,
        )


def read_calendar(source: IO[bytes]) -> Calendar:
    """The document as a calendar; FeedError when it is not iCalendar at all."""
    try:
        calendar = Calendar.from_ical(source.read())
    except ValueError as exc:
        raise FeedError(f"not an iCalendar document: {str(exc)[:200]}") from exc
    if not isinstance(calendar, Calendar) or calendar.name != "VCALENDAR":
        raise FeedError(f"not an iCalendar document: root is {calendar.name}, not VCALENDAR")
    return calendar


def _standardise(calendar: Calendar) -> tuple[Calendar, InvalidItem | None]:
    """Apply X-WR-TIMEZONE (Google and Outlook name the zone of their times there rather than in
    TZIDs); an unknown zone is reported and ignored, so floating times fall back to the feed's."""
    try:
        return x_wr_timezone.to_standard(calendar), None
    except (ValueError, LookupError) as exc:
        zone = calendar.get("X-WR-TIMEZONE")
        reason = f"X-WR-TIMEZONE {str(zone)!r} ignored: {exc}"
        return calendar, InvalidItem(key=None, reason=reason)


def parse_calendar(source: IO[bytes], *, zone: ZoneInfo, window: Window) -> Iterator[ParseResult]:
    """One ParsedEvent per occurrence in `window`; an InvalidItem per broken VEVENT, per series
    that cannot be expanded and per series cut at `window.max_occurrences`."""
    calendar, zone_problem = _standardise(read_calendar(source))
    if zone_problem:
        yield zone_problem
    series: dict[str, list[Component]] = {}
    identities: set[tuple[str, str]] = set()
    for index, component in enumerate(calendar.walk("VEVENT"), start=1):
        uid = str(component.get("UID", "")).strip()
        reason = problem(component, zone, window.end)
        identity = (uid, "" if reason else _recurrence_id(component))
        if not reason and identity in identities:
            reason = "another VEVENT has the same UID and RECURRENCE-ID"
        if reason:
            yield InvalidItem(key=uid or None, reason=f"{label(component, index)}: {reason}")
            continue
        identities.add(identity)
        series.setdefault(uid, []).append(component)

    seen: set[str] = set()
    for uid, components in series.items():
        try:
            occurrences, cut = _expand(components, zone, window)
            events = [to_event(uid, occurrence, zone) for occurrence in occurrences]
        except (ValueError, TypeError, OverflowError) as exc:
            yield InvalidItem(key=uid, reason=f"recurrence cannot be expanded: {exc}")
            continue
        for event in events:
            if event.key in seen:
                yield InvalidItem(key=event.key, reason="another VEVENT has the same UID and start")
                continue
            seen.add(event.key)
            yield event
        if cut:
            yield InvalidItem(
                key=uid,
                reason=f"{cut} more occurrences in the window than MAX_OCCURRENCES "
                f"({window.max_occurrences}) were left out, the farthest from now first",
            )


def _recurrence_id(component: Component) -> str:
    """With the UID, what names an instance in RFC 5545; the library would silently keep one of two
    VEVENTs sharing both."""
    recurrence_id = component.get("RECURRENCE-ID")
    return recurrence_id.dt.isoformat() if recurrence_id is not None else ""


def _expand(
    components: list[Component], zone: ZoneInfo, window: Window
) -> tuple[list[Component], int]:
    """The series' occurrences in the window and how many were left out to keep the cap."""
    calendar = Calendar()
    for component in components:
        calendar.add_component(component)
    found = recurring_ical_events.of(calendar).between(window.start, window.end)
    found.sort(key=lambda occurrence: instant(occurrence.start, zone))
    cap = window.max_occurrences
    if len(found) <= cap:
        return found, 0
    upcoming = [item for item in found if instant(item.end, zone) >= window.now][:cap]
    past = [item for item in found if instant(item.end, zone) < window.now]
    kept = past[len(past) - (cap - len(upcoming)) :] + upcoming
    return kept, len(found) - len(kept)
