"""The Fever parse step on the sample files: pure, bytes in, events and invalid items out."""

import io
from datetime import datetime

import pytest

from core.errors import FeedError
from core.plugins.contract import InvalidItem, ParsedEvent
from providers.fever.parser import parse_feed
from tests.providers.fever.feeds import fever_body


def parse(name: str) -> tuple[dict[str, ParsedEvent], list[InvalidItem]]:
    events: dict[str, ParsedEvent] = {}
    invalid: list[InvalidItem] = []
    for result in parse_feed(io.BytesIO(fever_body(name))):
        if isinstance(result, InvalidItem):
            invalid.append(result)
        else:
            assert result.key not in events, f"key {result.key} yielded twice"
            events[result.key] = result
    return events, invalid


def test_parse_yields_one_event_per_event_element_titled_from_its_base() -> None:
    events, invalid = parse("response_1.xml")

    assert invalid == []
    assert {key: event.title for key, event in events.items()} == {
        "291/291": "Camela en concierto",
        "322/1642": "Pantomima Full",
        "1591/1642": "Los Morancos",
    }


def test_parse_keeps_event_id_1642_of_different_bases_apart() -> None:
    events, _ = parse("response_1.xml")

    assert events["322/1642"].start == datetime(2021, 2, 10, 20, 0)
    assert events["1591/1642"].start == datetime(2021, 7, 31, 20, 0)


def test_parse_reads_plan_list_vocabulary_with_both_plans_of_base_322() -> None:
    events, invalid = parse("planlist_response_1.xml")

    assert invalid == []
    assert sorted(events) == ["1591/1642", "291/291", "322/1642", "322/1643"]
    assert events["322/1642"].title == events["322/1643"].title == "Pantomima Full"
    assert events["322/1643"].start == datetime(2021, 2, 11, 20, 0)
    assert events["322/1643"].end == datetime(2021, 2, 11, 21, 30)


def test_parse_gives_same_events_for_both_vocabularies() -> None:
    plans, _ = parse("planlist_response_1.xml")
    events, _ = parse("response_1.xml")

    assert {key: plans[key] for key in events} == events


def test_parse_takes_prices_over_all_zones_including_duplicate_zone_ids() -> None:
    events, _ = parse("response_1.xml")

    assert (events["1591/1642"].min_price, events["1591/1642"].max_price) == (65.0, 75.0)
    assert (events["291/291"].min_price, events["291/291"].max_price) == (15.0, 30.0)


def test_parse_gives_null_prices_to_an_event_without_zones() -> None:
    events, invalid = parse("no_zones.xml")

    assert invalid == []
    assert (events["900/9001"].min_price, events["900/9001"].max_price) == (None, None)


def test_parse_reads_wall_clock_times_and_sell_mode() -> None:
    events, _ = parse("response_2.xml")

    event = events["1591/1642"]
    assert (event.start, event.end) == (datetime(2021, 7, 31, 20, 0), datetime(2021, 7, 31, 21, 20))
    assert event.on_sale is True


def test_parse_skips_impossible_date_of_base_444_and_keeps_the_rest() -> None:
    events, invalid = parse("response_2.xml")

    assert sorted(events) == ["1591/1642", "291/291"]
    assert [item.key for item in invalid] == ["444/1642"]
    assert "2021-09-31" in invalid[0].reason


def test_parse_skips_missing_attribute_and_non_numeric_price() -> None:
    events, invalid = parse("invalid_items.xml")

    assert sorted(events) == ["503/5031"]
    assert events["503/5031"].min_price == 12.5
    reasons = {item.key: item.reason for item in invalid}
    assert sorted(reasons) == ["501/5011", "502/5021", "503/5032"]
    assert "event_end_date" in reasons["501/5011"]
    assert "ten euros" in reasons["502/5021"]


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_parse_refuses_entity_declarations(name: str) -> None:
    with pytest.raises(FeedError, match="entities"):
        list(parse_feed(io.BytesIO(fever_body(name))))


def test_parse_fails_on_malformed_xml() -> None:
    with pytest.raises(FeedError, match="well-formed"):
        list(parse_feed(io.BytesIO(fever_body("malformed_midway.xml"))))


def test_parse_refuses_a_document_that_is_not_a_fever_feed() -> None:
    with pytest.raises(FeedError, match="not a Fever feed"):
        list(parse_feed(io.BytesIO(b"<html><body><p>maintenance</p></body></html>")))


def test_parse_keeps_ids_containing_the_key_separator_apart() -> None:
    events, invalid = parse("slash_ids.xml")

    assert invalid == []
    assert sorted(event.title for event in events.values()) == [
        "Slash in the base id",
        "Slash in the event id",
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><error code="503">try later</error>',
        b"<!-- maintenance --><html><body/></html>",
    ],
)
def test_parse_refuses_a_shallow_document_that_is_not_a_fever_feed(body: bytes) -> None:
    with pytest.raises(FeedError, match="not a Fever feed"):
        list(parse_feed(io.BytesIO(body)))


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- none today -->\n<eventList version="1.0"/>',
        b"<planList><output></output></planList>",
        b'<!DOCTYPE eventList SYSTEM "eventList.dtd">\n<eventList><output/></eventList>',
    ],
)
def test_parse_accepts_an_empty_feed_of_either_vocabulary(body: bytes) -> None:
    assert list(parse_feed(io.BytesIO(body))) == []
