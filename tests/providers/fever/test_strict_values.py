"""Strict reading of the Fever feed's values: a price is an ASCII decimal, a date-time is exactly
`YYYY-MM-DDTHH:MM:SS`, `sell_mode` is `online` or `offline`; anything else skips its item with a
reason rather than becoming data."""

import io
import math
from datetime import datetime

import pytest

from core.plugins.contract import InvalidItem, ParsedEvent, ParseResult
from providers.fever.plugin import FeverProvider
from tests.providers.fever.feeds import base_xml, event_xml, feed_xml


def parse(body: bytes) -> list[ParseResult]:
    provider = FeverProvider()
    return list(provider.parse(provider.load_settings(), io.BytesIO(body)))


def only(body: bytes) -> ParseResult:
    [result] = parse(body)
    return result


@pytest.mark.parametrize(
    ("raw", "price"),
    [("12", 12.0), ("12.50", 12.5), ("+3", 3.0), ("0", 0.0), ("0.00", 0.0), ("007.10", 7.1)],
)
def test_parse_reads_an_ascii_decimal_price(raw: str, price: float) -> None:
    event = only(feed_xml(base_xml("1", event_xml(prices=(raw,)))))

    assert isinstance(event, ParsedEvent)
    assert (event.min_price, event.max_price) == (price, price)


@pytest.mark.parametrize("raw", ["-0", "-0.00", "+0"])
def test_parse_stores_negative_zero_as_zero(raw: str) -> None:
    event = only(feed_xml(base_xml("1", event_xml(prices=(raw, "5.00")))))

    assert isinstance(event, ParsedEvent)
    assert event.min_price == 0.0 and math.copysign(1.0, event.min_price) == 1.0


@pytest.mark.parametrize(
    "raw",
    [
        "1_000",
        "١٢",  # Arabic-Indic digits
        "\uff11\uff12",  # full-width digits
        "1e3",
        "nan",
        "inf",
        "-inf",
        "Infinity",
        " 12",
        "12 ",
        "0x10",
        ".5",
        "5.",
        "1,50",
        "",
        "+",
        "ten euros",
    ],
)
def test_parse_skips_an_event_whose_price_is_not_an_ascii_decimal(raw: str) -> None:
    skipped = only(feed_xml(base_xml("1", event_xml(prices=("10.00", raw)))))

    assert isinstance(skipped, InvalidItem)
    assert skipped.key == "1/1"
    assert f"zone price {raw!r} is not a decimal number" in skipped.reason


def test_parse_skips_an_event_with_a_negative_price() -> None:
    skipped = only(feed_xml(base_xml("1", event_xml(prices=("10.00", "-5.00")))))

    assert isinstance(skipped, InvalidItem)
    assert "negative zone price '-5.00'" in skipped.reason


def test_parse_skips_an_event_whose_price_is_too_large_to_be_a_number() -> None:
    skipped = only(feed_xml(base_xml("1", event_xml(prices=("9" * 400,)))))

    assert isinstance(skipped, InvalidItem)
    assert "out of range" in skipped.reason


def test_parse_skips_an_event_with_a_zone_without_a_price() -> None:
    body = feed_xml(base_xml("1", event_xml().replace('price="12.00" ', "")))

    skipped = only(body)

    assert isinstance(skipped, InvalidItem)
    assert "missing attribute price" in skipped.reason


def test_parse_reads_a_date_time_exactly_as_the_feed_gives_it() -> None:
    event = only(feed_xml(base_xml("1", event_xml(start="2021-06-30T21:05:09"))))

    assert isinstance(event, ParsedEvent)
    assert event.start == datetime(2021, 6, 30, 21, 5, 9)


@pytest.mark.parametrize(
    "raw",
    [
        "2021-06-30",  # a date alone is not an event time
        "2021-W26-3",  # ISO week date
        "2021-W26-3T21:00:00",
        "2021-181T21:00:00",  # ISO ordinal date
        "2021-06-30T21:00:00+02:00",
        "2021-06-30T21:00:00Z",
        "2021-06-30T21:00:00.000",
        "2021-06-30 21:00:00",
        "2021-06-30T21:00",
        "20210630T210000",
        "2021-6-30T21:00:00",
        " 2021-06-30T21:00:00",
        "\uff12\uff10\uff12\uff11-06-30T21:00:00",  # full-width digits
        "2021-06-30T24:00:00",
        "2021-09-31T20:00:00",
    ],
)
def test_parse_skips_an_event_whose_date_time_has_another_shape(raw: str) -> None:
    skipped = only(feed_xml(base_xml("1", event_xml(start=raw))))

    assert isinstance(skipped, InvalidItem)
    assert skipped.reason == f"invalid event_start_date {raw!r}: not YYYY-MM-DDTHH:MM:SS"


@pytest.mark.parametrize(("mode", "on_sale"), [("online", True), ("offline", False)])
def test_parse_reads_the_two_known_sell_modes(mode: str, on_sale: bool) -> None:
    event = only(feed_xml(base_xml("1", sell_mode=mode)))

    assert isinstance(event, ParsedEvent)
    assert event.on_sale is on_sale


@pytest.mark.parametrize("mode", ["ONLINE", "Online", " online", "on sale", ""])
def test_parse_reports_an_unknown_sell_mode_for_each_event_of_its_base(mode: str) -> None:
    body = feed_xml(base_xml("7", event_xml("1"), event_xml("2"), sell_mode=mode))

    results = parse(body)

    assert [type(result) for result in results] == [InvalidItem, InvalidItem]
    assert [result.key for result in results] == ["7/1", "7/2"]
    assert all(f"unknown sell_mode {mode!r}" in result.reason for result in results)


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"title": None}, "missing attribute title"),
        ({"title": "  "}, "missing attribute title"),
        ({"sell_mode": None}, "missing attribute sell_mode"),
    ],
)
def test_parse_skips_each_event_of_a_base_missing_an_attribute(
    attributes: dict, reason: str
) -> None:
    body = feed_xml(
        base_xml("8", event_xml("1"), event_xml("2"), event_xml("3"), **attributes),
        base_xml("9"),
    )

    results = parse(body)

    assert [result.key for result in results] == ["8/1", "8/2", "8/3", "9/1"]
    assert [isinstance(result, InvalidItem) for result in results] == [True, True, True, False]
    assert all(reason in result.reason for result in results[:3])  # type: ignore[union-attr]


def test_parse_quotes_at_most_40_characters_of_a_value_in_a_reason() -> None:
    raw = "9" * 30 + "x" * 5000

    skipped = only(feed_xml(base_xml("1", event_xml(prices=(raw,)))))

    assert isinstance(skipped, InvalidItem)
    assert skipped.reason == f"zone price {raw[:40]!r}… is not a decimal number"
