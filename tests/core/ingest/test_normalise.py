"""From a provider's event to the stored row: public ids, local display fields, UTC instants."""

import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from core.ingest.normalise import EVENT_NAMESPACE, event_uuid, normalise
from core.plugins.contract import ParsedEvent

MADRID = ZoneInfo("Europe/Madrid")


def event(**changes: object) -> ParsedEvent:
    values: dict[str, object] = {
        "key": "291/291",
        "title": "Camela en concierto",
        "start": datetime(2021, 6, 30, 21, 0),
        "end": datetime(2021, 6, 30, 22, 0),
        "on_sale": True,
        "min_price": 15.0,
        "max_price": 30.0,
    }
    values.update(changes)
    return ParsedEvent(**values)  # type: ignore[arg-type]


def test_event_uuid_is_a_fixed_uuid5_of_provider_and_key() -> None:
    assert uuid.UUID("6f1f6b9e-3c1a-5d7e-9a51-6d61727175ee") == EVENT_NAMESPACE
    assert event_uuid("fever", "291/291") == uuid.UUID("2fb4b80a-2718-5c33-b6d0-0ba0d04be9bd")
    assert event_uuid("fever", "322/1642") != event_uuid("fever", "1591/1642")
    assert event_uuid("fever", "322/1642") != event_uuid("other", "322/1642")


def test_normalise_keeps_wall_clock_for_display_and_stores_utc_instants() -> None:
    row = normalise("fever", MADRID, event())

    assert (row["start_date"], row["start_time"]) == (date(2021, 6, 30), time(21, 0))
    assert (row["end_date"], row["end_time"]) == (date(2021, 6, 30), time(22, 0))
    # Madrid is UTC+2 in summer.
    assert row["starts_at"] == datetime(2021, 6, 30, 19, 0, tzinfo=UTC)
    assert row["ends_at"] == datetime(2021, 6, 30, 20, 0, tzinfo=UTC)
    assert row["id"] == event_uuid("fever", "291/291")
    assert (row["provider"], row["external_id"]) == ("fever", "291/291")


def test_normalise_uses_winter_offset_in_winter() -> None:
    row = normalise(
        "fever", MADRID, event(start=datetime(2021, 2, 10, 20), end=datetime(2021, 2, 10, 21, 30))
    )

    assert row["starts_at"] == datetime(2021, 2, 10, 19, 0, tzinfo=UTC)


def test_normalise_shows_offset_timestamps_in_the_provider_zone() -> None:
    plus_five = timezone(timedelta(hours=5))
    row = normalise(
        "fever",
        MADRID,
        event(
            start=datetime(2021, 6, 30, 23, 0, tzinfo=plus_five),
            end=datetime(2021, 7, 1, 0, 0, tzinfo=plus_five),
        ),
    )

    assert (row["start_date"], row["start_time"]) == (date(2021, 6, 30), time(20, 0))
    assert row["starts_at"] == datetime(2021, 6, 30, 18, 0, tzinfo=UTC)


def test_normalise_stores_all_day_event_as_whole_local_days() -> None:
    row = normalise("fever", MADRID, event(start=date(2021, 7, 1), end=date(2021, 7, 2)))

    assert (row["start_time"], row["end_time"]) == (None, None)
    assert row["end_date"] == date(2021, 7, 2)
    assert row["starts_at"] == datetime(2021, 6, 30, 22, 0, tzinfo=UTC)
    assert row["ends_at"] == datetime(2021, 7, 2, 22, 0, tzinfo=UTC)


def test_normalise_keeps_null_prices() -> None:
    row = normalise("fever", MADRID, event(min_price=None, max_price=None))

    assert (row["min_price"], row["max_price"]) == (None, None)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": "  "}, "no title"),
        ({"key": ""}, "no key"),
        ({"min_price": 40.0, "max_price": 30.0}, "above"),
        ({"min_price": -1.0}, "non-negative"),
        ({"max_price": float("nan")}, "finite"),
        ({"min_price": None}, "together"),
        ({"end": datetime(2021, 6, 30, 20, 0)}, "ends before it starts"),
        ({"end": date(2021, 6, 30)}, "end is a date"),
    ],
)
def test_normalise_refuses_events_it_cannot_serve(changes: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise("fever", MADRID, event(**changes))


def test_normalise_compacts_key_longer_than_the_column_and_keeps_its_uuid() -> None:
    key = "x" * 300
    row = normalise("fever", MADRID, event(key=key))
    twin = normalise("fever", MADRID, event(key=key[:-1] + "y"))

    assert len(row["external_id"]) == 255
    assert row["external_id"].startswith("x" * 190 + "#")
    assert row["external_id"] == normalise("fever", MADRID, event(key=key))["external_id"]
    assert twin["external_id"] != row["external_id"]
    assert row["id"] == event_uuid("fever", key)
    assert normalise("fever", MADRID, event(key="y" * 255))["external_id"] == "y" * 255


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"title": 123}, "title must be text, not int"),
        ({"key": 7}, "key must be text, not int"),
        ({"min_price": [1], "max_price": [1]}, "min_price must be a number, not list"),
        ({"min_price": "15", "max_price": "30"}, "min_price must be a number, not str"),
        ({"max_price": 10**400}, "max_price must be a number"),
        ({"title": "a\x00b"}, "NUL"),
        ({"title": "\ud800"}, "not valid Unicode"),
        ({"start": datetime(9999, 12, 31, 23), "end": None}, "out of the supported range"),
        ({"start": "2021-06-30"}, "start must be a date or a date-time"),
    ],
)
def test_normalise_refuses_ill_typed_events_with_a_clear_reason(changes: dict, reason: str) -> None:
    zone = ZoneInfo("America/New_York")
    with pytest.raises(ValueError, match=reason):
        normalise("fever", zone, event(**changes))


def test_normalise_checks_order_on_the_feeds_wall_clock_across_a_dst_gap() -> None:
    # 02:30 does not exist in Madrid on 2021-03-28 (clocks jump from 02:00 to 03:00).
    row = normalise(
        "fever",
        MADRID,
        event(start=datetime(2021, 3, 28, 2, 30), end=datetime(2021, 3, 28, 3, 15)),
    )

    assert (row["start_time"], row["end_time"]) == (time(2, 30), time(3, 15))
    assert row["starts_at"] <= row["ends_at"]


def test_normalise_stores_a_negative_zero_price_from_any_provider_as_zero() -> None:
    row = normalise("fever", MADRID, event(min_price=-0.0, max_price=-0.0))

    assert (row["min_price"], row["max_price"]) == (0.0, 0.0)
    assert math.copysign(1.0, row["min_price"]) == math.copysign(1.0, row["max_price"]) == 1.0
