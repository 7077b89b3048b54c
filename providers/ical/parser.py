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

from core.contract import InvalidItem, ParseResult
from core.errors import FeedError
from providers.ical.vevent import instant, label, problem, to_event


@dataclass(frozen=True, slots=True)
class Window:
    """Occurrences ending at or after `start` and starting at or before `end` are produced, at most
    `max_occurrences` per series."""

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
    for index, component in enumerate(calendar.walk("VEVENT"), start=1):
        reason = problem(component, zone, window.start)
        if reason:
            uid = str(component.get("UID", "")).strip() or None
            yield InvalidItem(key=uid, reason=f"{label(component, index)}: {reason}")
            continue
        series.setdefault(str(component["UID"]).strip(), []).append(component)

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
                reason=f"more than {window.max_occurrences} occurrences in the window; "
                "the later ones were left out",
            )


def _expand(
    components: list[Component], zone: ZoneInfo, window: Window
) -> tuple[list[Component], bool]:
    """The series' occurrences in the window, in start order, and whether some were cut."""
    calendar = Calendar()
    for component in components:
        calendar.add_component(component)
    occurrences: list[Component] = []
    # `after` is lazy, so an RRULE without COUNT or UNTIL is only walked as far as needed.
    for occurrence in recurring_ical_events.of(calendar).after(window.start):
        if instant(occurrence.start, zone) > window.end:
            return occurrences, False
        if len(occurrences) == window.max_occurrences:
            return occurrences, True
        occurrences.append(occurrence)
    return occurrences, False
