"""One VEVENT: whether it can be served, and one of its occurrences as a ParsedEvent."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from icalendar import Component

from marquee import ParsedEvent, wall_clock

# Roughly how long one period of each FREQ lasts, to tell how much work expanding a rule takes.
FREQ_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86_400,
    "WEEKLY": 7 * 86_400,
    "MONTHLY": 28 * 86_400,
    "YEARLY": 365 * 86_400,
}
# The recurrence library walks every period from DTSTART to the window's end; this many take ~1 s.
MAX_PERIODS = 100_000

# "Ever on sale": only these STATUS values keep an occurrence off sale (see the plugin docstring).
NOT_ON_SALE = frozenset({"TENTATIVE", "CANCELLED"})


def instant(value: date, zone: ZoneInfo) -> datetime:
    """The aware moment a DTSTART/DTEND value stands for; floating times are taken in `zone`."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, time(), zone)


def label(component: Component, index: int) -> str:
    summary = str(component.get("SUMMARY", "")).strip()
    return f"VEVENT #{index}" + (f" ({summary[:60]!r})" if summary else "")


def problem(component: Component, zone: ZoneInfo, window_end: datetime) -> str | None:
    """Why this VEVENT cannot be served, or None when it can."""
    if component.errors:
        name, message = component.errors[0]
        return f"{name}: {message}"
    if not str(component.get("UID", "")).strip():
        return "no UID"
    if not str(component.get("SUMMARY", "")).strip():
        return "no SUMMARY"
    if "DTSTART" not in component:
        return "no DTSTART"
    try:
        start, end = component.start, component.end
    except ValueError as exc:  # icalendar's IncompleteComponent and broken properties
        return str(exc)
    if isinstance(start, datetime) != isinstance(end, datetime):
        return "DTSTART and DTEND are not both dates or both date-times"
    if instant(end, zone) < instant(start, zone):
        return "DTEND is before DTSTART"
    return _recurrence_problem(component, instant(start, zone), zone, window_end)


def _recurrence_problem(
    component: Component, start: datetime, zone: ZoneInfo, window_end: datetime
) -> str | None:
    rules = component.get("RRULE") or []
    for rule in rules if isinstance(rules, list) else [rules]:
        freq = str((rule.get("FREQ") or [""])[0]).upper()
        interval = max(int((rule.get("INTERVAL") or [1])[0]), 1)
        until = (rule.get("UNTIL") or [None])[0]
        last = min(window_end, instant(until, zone)) if until else window_end
        periods = (last - start).total_seconds() / (FREQ_SECONDS.get(freq, 86_400) * interval)
        count = (rule.get("COUNT") or [None])[0]
        if min(periods, count or periods) > MAX_PERIODS:
            return (
                f"RRULE FREQ={freq} repeats more than {MAX_PERIODS} times between DTSTART and "
                "the end of the expansion window"
            )
    return None


def occurrence_key(uid: str, start: date) -> str:
    """`UID/start` of the occurrence as scheduled (its RECURRENCE-ID): the UTC instant for zoned times, the wall-clock time for floating ones (so the
    key does not move when the feed's zone setting changes), the day for all-day events."""
    if isinstance(start, datetime) and start.tzinfo:
        return f"{uid}/{start.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return f"{uid}/{start.isoformat()}"


def to_event(uid: str, occurrence: Component, zone: ZoneInfo) -> ParsedEvent:
    """One expanded occurrence as the platform expects it: local wall-clock times in `zone`, or
    dates with an inclusive last day for all-day events."""
    start, end = occurrence.start, occurrence.end
    status = str(occurrence.get("STATUS", "")).strip().upper()
    # An overridden instance keeps the id of the slot it replaces, so moving it updates one event.
    recurrence_id = occurrence.get("RECURRENCE-ID")
    key = occurrence_key(uid, recurrence_id.dt if recurrence_id is not None else start)
    title = str(occurrence.get("SUMMARY", "")).strip()
    on_sale = status not in NOT_ON_SALE
    if isinstance(start, datetime):
        return ParsedEvent(
            key=key,
            title=title,
            start=wall_clock(start, zone),
            end=wall_clock(end, zone),
            on_sale=on_sale,
        )
    # RFC 5545 DTEND is exclusive; a one-day event may give DTEND equal to DTSTART.
    last_day = max(start, end - timedelta(days=1))
    return ParsedEvent(key=key, title=title, start=start, end=last_day, on_sale=on_sale)
