"""The iCalendar parse rules, each on a small fixture, with the clock pinned to 2027-03-01 12:00Z."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from core.errors import FeedError
from core.ingest.normalise import event_uuid, normalise
from tests.providers.ical.helpers import events, ical_bytes, invalid, parse


def test_parse_shows_tzid_and_utc_times_as_wall_clock_in_the_feed_zone() -> None:
    found = events(parse(ical_bytes("zones.ics")))

    concert = found["madrid@zones.test/2027-03-10T19:00:00Z"]
    assert (concert.start, concert.end) == (
        datetime(2027, 3, 10, 20),
        datetime(2027, 3, 10, 22, 30),
    )
    talk = found["utc@zones.test/2027-03-10T18:00:00Z"]  # 18:00Z plus a DURATION of 1h30
    assert (talk.start, talk.end) == (datetime(2027, 3, 10, 19), datetime(2027, 3, 10, 20, 30))
    show = found["custom@zones.test/2027-03-12T18:00:00Z"]  # 21:00 in the calendar's own +03:00
    assert (show.start, show.end) == (datetime(2027, 3, 12, 19), datetime(2027, 3, 12, 21))


def test_parse_shows_the_same_instants_in_another_configured_zone() -> None:
    found = events(parse(ical_bytes("zones.ics"), timezone="America/New_York"))

    concert = found["madrid@zones.test/2027-03-10T19:00:00Z"]
    assert (concert.start, concert.end) == (
        datetime(2027, 3, 10, 14),
        datetime(2027, 3, 10, 16, 30),
    )


@pytest.mark.parametrize("zone", ["Europe/Madrid", "America/New_York"])
def test_parse_takes_floating_times_as_already_in_the_feed_zone(zone: str) -> None:
    found = events(parse(ical_bytes("zones.ics"), timezone=zone))

    play = found["floating@zones.test/2027-03-11T19:30:00"]
    assert (play.start, play.end) == (datetime(2027, 3, 11, 19, 30), datetime(2027, 3, 11, 21, 15))


def test_parse_takes_floating_times_in_the_calendars_x_wr_timezone_when_it_names_one() -> None:
    (event,) = events(parse(ical_bytes("x_wr_timezone.ics"))).values()

    # 20:00 in New York (EDT) is 00:00Z, which is 02:00 in Madrid (CEST) the next day.
    assert (event.start, event.end) == (datetime(2027, 6, 11, 2), datetime(2027, 6, 11, 4))
    assert event.key == "floating@google.test/2027-06-11T00:00:00Z"


def test_parse_reports_an_unknown_x_wr_timezone_and_keeps_floating_times_in_the_feed_zone() -> None:
    body = ical_bytes("x_wr_timezone.ics").replace(b"America/New_York", b"Mars/Olympus")

    results = parse(body)

    (event,) = events(results).values()
    assert event.start == datetime(2027, 6, 10, 20)
    assert ["Mars/Olympus" in item.reason for item in invalid(results)] == [True]


def test_parse_gives_all_day_events_dates_with_an_inclusive_last_day() -> None:
    found = events(parse(ical_bytes("zones.ics")))

    festival = found["festival@zones.test/2027-03-20"]  # DTEND 2027-03-23 is exclusive
    assert (festival.start, festival.end) == (date(2027, 3, 20), date(2027, 3, 22))
    fair = found["fair@zones.test/2027-03-25"]  # no DTEND: one day
    assert (fair.start, fair.end) == (date(2027, 3, 25), date(2027, 3, 25))


def test_all_day_events_are_stored_with_null_times_and_the_inclusive_last_day() -> None:
    festival = events(parse(ical_bytes("zones.ics")))["festival@zones.test/2027-03-20"]

    row = normalise("venue", ZoneInfo("Europe/Madrid"), festival)

    assert (row["start_date"], row["start_time"]) == (date(2027, 3, 20), None)
    assert (row["end_date"], row["end_time"]) == (date(2027, 3, 22), None)


def test_parse_ends_a_timed_event_without_dtend_or_duration_when_it_starts() -> None:
    doors = events(parse(ical_bytes("zones.ics")))["open@zones.test/2027-03-26T17:00:00Z"]

    assert doors.start == doors.end == datetime(2027, 3, 26, 18)


def test_parse_never_gives_prices() -> None:
    found = events(parse(ical_bytes("zones.ics")) + parse(ical_bytes("recurring.ics")))

    assert found
    assert {(event.min_price, event.max_price) for event in found.values()} == {(None, None)}


def test_parse_gives_the_same_keys_on_every_run_and_ids_differ_per_feed() -> None:
    first = events(parse(ical_bytes("recurring.ics")))
    again = events(parse(ical_bytes("recurring.ics")))

    assert list(first) == list(again)
    key = "jazz@recurring.test/2027-03-01T20:00:00Z"
    assert key in first
    assert event_uuid("venue_a", key) != event_uuid("venue_b", key)


def test_parse_expands_rrule_with_exdate_rdate_and_overridden_instances() -> None:
    found = events(parse(ical_bytes("recurring.ics")))
    jazz = {key: event for key, event in found.items() if key.startswith("jazz@")}

    assert sorted(jazz) == [
        "jazz@recurring.test/2027-03-01T20:00:00Z",
        "jazz@recurring.test/2027-03-08T20:00:00Z",  # moved to Tuesday by its RECURRENCE-ID
        "jazz@recurring.test/2027-03-22T20:00:00Z",  # cancelled by its override
        "jazz@recurring.test/2027-03-29T19:00:00Z",  # after the switch to summer time
        "jazz@recurring.test/2027-04-03T16:00:00Z",  # the RDATE; 03-15 is an EXDATE
    ]
    moved = jazz["jazz@recurring.test/2027-03-08T20:00:00Z"]
    assert moved.title == "Jazz night (moved to Tuesday)"
    assert (moved.start, moved.end) == (datetime(2027, 3, 9, 22), datetime(2027, 3, 10, 0))
    assert jazz["jazz@recurring.test/2027-03-29T19:00:00Z"].start == datetime(2027, 3, 29, 21)
    assert jazz["jazz@recurring.test/2027-04-03T16:00:00Z"].end == datetime(2027, 4, 3, 20)


def test_parse_expands_all_day_recurrences_as_days() -> None:
    found = events(parse(ical_bytes("recurring.ics")))

    markets = sorted(event.start for key, event in found.items() if key.startswith("market@"))

    assert markets == [date(2027, 3, 6), date(2027, 4, 3), date(2027, 5, 1)]


def test_parse_expands_an_endless_rule_from_1990_only_inside_the_window() -> None:
    results = parse(ical_bytes("recurring.ics"), past_days=2, horizon_days=5)

    tours = sorted(event.start for key, event in events(results).items() if "forever" in key)

    # 11:00-12:00 Madrid daily; the window runs from 2027-02-27 12:00Z to 2027-03-06 12:00Z.
    assert tours == [datetime(2027, 2, day, 11) for day in (28,)] + [
        datetime(2027, 3, day, 11) for day in range(1, 7)
    ]
    assert invalid(results) == []


def test_parse_stops_expanding_at_the_horizon() -> None:
    found = events(parse(ical_bytes("recurring.ics"), horizon_days=10))

    assert sorted(key for key in found if key.startswith("jazz@")) == [
        "jazz@recurring.test/2027-03-01T20:00:00Z",
        "jazz@recurring.test/2027-03-08T20:00:00Z",
    ]


def test_parse_cuts_a_series_at_max_occurrences_keeping_upcoming_ones_and_counts_the_cut() -> None:
    results = parse(ical_bytes("recurring.ics"), past_days=10, horizon_days=10, max_occurrences=3)

    # 20 daily tours in the window (02-20 to 03-11); today's ended at 11:00Z, before "now".
    tours = sorted(event.start for key, event in events(results).items() if "forever" in key)
    assert tours == [datetime(2027, 3, day, 11) for day in (2, 3, 4)]
    (cut,) = invalid(results)
    assert cut.key == "forever@recurring.test"
    assert cut.reason.startswith("17 more occurrences")


def test_parse_fills_the_cap_with_the_most_recent_past_occurrences_after_upcoming_ones() -> None:
    now = datetime(2027, 3, 30, 12, tzinfo=UTC)
    results = parse(
        ical_bytes("recurring.ics"), now=now, past_days=60, horizon_days=10, max_occurrences=3
    )

    jazz = sorted(key for key in events(results) if key.startswith("jazz@"))
    assert jazz == [
        "jazz@recurring.test/2027-03-22T20:00:00Z",
        "jazz@recurring.test/2027-03-29T19:00:00Z",
        "jazz@recurring.test/2027-04-03T16:00:00Z",
    ]
    assert "jazz@recurring.test" in {item.key for item in invalid(results)}


def test_parse_expands_the_default_two_year_window_without_cutting() -> None:
    results = parse(ical_bytes("recurring.ics"))

    assert invalid(results) == []
    assert len([key for key in events(results) if key.startswith("forever@")]) > 700


def test_parse_puts_confirmed_or_unset_status_on_sale_and_tentative_or_cancelled_not() -> None:
    found = events(parse(ical_bytes("status.ics")))

    on_sale = {key.split("@")[0]: event.on_sale for key, event in found.items()}
    assert {name: on_sale[name] for name in ("confirmed", "plain", "tentative", "cancelled")} == {
        "confirmed": True,
        "plain": True,
        "tentative": False,
        "cancelled": False,
    }


def test_parse_honours_the_status_of_an_overridden_instance() -> None:
    found = events(parse(ical_bytes("status.ics")))

    series = [found[key].on_sale for key in sorted(found) if key.startswith("series@")]

    assert series == [False, True, False]


def test_parse_skips_each_broken_vevent_with_its_reason_and_keeps_the_rest() -> None:
    results = parse(ical_bytes("broken.ics"))

    assert sorted(events(results)) == [
        "good@broken.test/2027-05-01T19:00:00Z",
        "twin@broken.test/2027-05-07T19:00:00Z",
    ]
    assert events(results)["twin@broken.test/2027-05-07T19:00:00Z"].title == "Twin, first copy"
    reasons = {item.key: item.reason for item in invalid(results)}
    assert set(reasons) == {
        "no-start@broken.test",
        "bad-date@broken.test",
        None,
        "no-summary@broken.test",
        "reversed@broken.test",
        "mixed@broken.test",
        "bad-rule@broken.test",
        "minutely@broken.test",
        "twin@broken.test",
    }
    assert "no DTSTART" in reasons["no-start@broken.test"]
    assert "2027-05-99" in reasons["bad-date@broken.test"]
    assert "no UID" in reasons[None]
    assert "no SUMMARY" in reasons["no-summary@broken.test"]
    assert "DTEND is before DTSTART" in reasons["reversed@broken.test"]
    assert "SOMETIMES" in reasons["bad-rule@broken.test"]
    assert "MINUTELY" in reasons["minutely@broken.test"]
    assert "same UID" in reasons["twin@broken.test"]


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Maintenance</body></html>",
        b"",
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Someone\r\nEND:VCARD\r\n",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:cut@off\r\n",
        b'{"events": []}',
    ],
    ids=["html", "empty", "vcard", "truncated", "json"],
)
def test_parse_refuses_a_document_that_is_not_icalendar(body: bytes) -> None:
    with pytest.raises(FeedError, match="not an iCalendar document"):
        parse(body)
