"""iCalendar (RFC 5545) feeds as Marquee providers: one plugin, one provider per configured feed.

`MARQUEE_ICAL_FEEDS=venue_a,venue_b` registers providers `venue_a` and `venue_b`, each with its own
schedule, status and id namespace, configured through `MARQUEE_VENUE_A_URL`,
`MARQUEE_VENUE_A_TIMEZONE` and so on (see `providers.ical.settings.IcalSettings`).

What a feed becomes:
- one event per VEVENT occurrence: RRULE, RDATE, EXDATE and RECURRENCE-ID overrides are expanded
  by recurring-ical-events, from `PAST_DAYS` before now to `HORIZON_DAYS` ahead, at most
  `MAX_OCCURRENCES` per series (a cut series is counted as skipped);
- the event key is `UID/start` (UTC instant, floating wall-clock time, or the day of an all-day
  event), so ids are stable per (feed, UID, occurrence start);
- times with a TZID or in UTC are shown as wall-clock time in the feed's `TIMEZONE`; floating
  times are taken as already in it (or in the calendar's X-WR-TIMEZONE when it names one);
- all-day events (DATE values) have no times and an inclusive last day (DTEND is exclusive);
  a date-time event with neither DTEND nor DURATION ends when it starts (RFC 5545 3.6.1);
- iCalendar has no prices: min_price and max_price are null;
- a VEVENT that cannot be served (no UID, SUMMARY or DTSTART, an unreadable value, DTEND before
  DTSTART, a recurrence too costly to expand) is skipped and counted; the rest is stored.

"Ever on sale": an occurrence is on sale unless its STATUS (the override's own STATUS for an
overridden instance) is TENTATIVE, not yet confirmed, or CANCELLED. CONFIRMED, no STATUS or any
other value counts as on sale. As everywhere in Marquee, "ever" is sticky: an occurrence once on sale
stays searchable when it is later cancelled (showing the feed's latest values) or disappears from
the feed (showing the last values fetched); one never on sale never becomes searchable.
"""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import IO

from marquee import ParseResult, Provider, ProviderSettings, hookimpl
from providers.ical.parser import Window, parse_calendar
from providers.ical.settings import FEEDS_VARIABLE, IcalSettings, feed_names


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IcalProvider(Provider):
    """One configured iCalendar feed; its name is the feed's name from MARQUEE_ICAL_FEEDS."""

    title = "iCalendar (RFC 5545) feed"
    settings_class = IcalSettings

    def __init__(self, name: str, *, clock: Callable[[], datetime] = _utcnow) -> None:
        super().__init__(name)
        # The expansion window moves with time; tests pin the clock to stay deterministic.
        self.clock = clock

    def parse(
        self, settings: ProviderSettings, source: IO[bytes], *, now: datetime | None = None
    ) -> Iterator[ParseResult]:
        if not isinstance(settings, IcalSettings):
            raise TypeError(f"{self.name} needs IcalSettings, not {type(settings).__name__}")
        window = Window.around(
            now or self.clock(),
            past_days=settings.past_days,
            horizon_days=settings.horizon_days,
            max_occurrences=settings.max_occurrences,
        )
        return parse_calendar(source, zone=settings.zone, window=window)


@hookimpl
def register_providers() -> list[Provider]:
    return [IcalProvider(name) for name in feed_names()]


@hookimpl
def setup_hint() -> str:
    names = feed_names()
    if not names:
        return (
            f"no feeds configured ({FEEDS_VARIABLE} is empty): name each iCalendar feed there, "
            f"e.g. {FEEDS_VARIABLE}=theatre with MARQUEE_THEATRE_URL=https://…/theatre.ics, "
            "and enable those names in MARQUEE_PROVIDERS"
        )
    return f"one provider per feed named in {FEEDS_VARIABLE} (enable them in MARQUEE_PROVIDERS)"
