"""Events that are valid but awkward to store: keys longer than the column, times in a DST gap."""

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy.engine import Engine

from core.ingest.normalise import event_uuid
from tests.providers.fever.feeds import counts, fetch_fever, stored_rows
from tests.support.feed_server import FeedServer

LONG_ID = "9" * 300


def feed(*bases: tuple[str, str, str, str], sell_modes: tuple[str, ...] = ()) -> bytes:
    """A Fever feed with one base event per (base id, title, start, end), each with one item."""
    modes = list(sell_modes) + ["online"] * (len(bases) - len(sell_modes))
    parts = [
        f'<base_event base_event_id="{base_id}" sell_mode="{mode}" title="{title}">'
        f'<event event_start_date="{start}" event_end_date="{end}" event_id="1" sold_out="false">'
        '<zone zone_id="1" capacity="10" price="12.00" name="A" numbered="false"/>'
        "</event></base_event>"
        for (base_id, title, start, end), mode in zip(bases, modes, strict=True)
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?><eventList version="1.0"><output>'
        + "".join(parts)
        + "</output></eventList>"
    ).encode()


def test_fetch_stores_event_whose_key_is_longer_than_the_column_next_to_a_normal_one(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    body = feed(
        (LONG_ID, "Long id", "2021-06-30T21:00:00", "2021-06-30T22:00:00"),
        ("291", "Short id", "2021-06-30T21:00:00", "2021-06-30T22:00:00"),
    )

    report = fetch_fever(monkeypatch, engine, feed_server, body)
    again = fetch_fever(monkeypatch, engine, feed_server, body)

    assert counts(report) == (2, 0, 0, 0)
    assert counts(again) == (0, 0, 2, 0)
    rows = {row["title"]: row for row in stored_rows(engine).values()}
    long_row = rows["Long id"]
    assert len(long_row["external_id"]) == 255
    assert long_row["external_id"].startswith(LONG_ID[:100])
    # The public id is still derived from the feed's full key, like every other event's.
    assert long_row["id"] == event_uuid("fever", f"{LONG_ID}/1")
    assert rows["Short id"]["external_id"] == "291/1"


def test_fetch_keeps_event_that_starts_in_the_spring_forward_gap(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    # Madrid skips 02:00-03:00 on 2021-03-28: 02:30 does not exist, but 02:30-03:15 is what the feed
    # says and it is not an event that ends before it starts.
    body = feed(("77", "Night show", "2021-03-28T02:30:00", "2021-03-28T03:15:00"))

    report = fetch_fever(monkeypatch, engine, feed_server, body, timezone="Europe/Madrid")

    assert counts(report) == (1, 0, 0, 0)
    row = stored_rows(engine)["77/1"]
    assert (row["start_date"], row["start_time"]) == (date(2021, 3, 28), time(2, 30))
    assert row["end_time"] == time(3, 15)
    # 02:30 is read with the winter offset (01:30 UTC); 03:15 CEST is 01:15 UTC, so the end is
    # clamped to the start rather than stored before it.
    assert row["starts_at"] == row["ends_at"] == datetime(2021, 3, 28, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize("batch_size", [500, 1])
@pytest.mark.parametrize(
    ("modes", "stored"),
    [(("online", "offline"), (True, True)), (("offline", "online"), (False, False))],
)
def test_fetch_of_an_event_listed_twice_stores_its_first_copy_whatever_the_batch_size(
    batch_size: int,
    modes: tuple[str, str],
    stored: tuple[bool, bool],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
) -> None:
    times = ("2021-06-30T21:00:00", "2021-06-30T22:00:00")
    body = feed(("5", "Show", *times), ("5", "Show", *times), sell_modes=modes)

    report = fetch_fever(monkeypatch, engine, feed_server, body, batch_size=batch_size)

    assert (report.inserted, report.duplicates) == (1, 1)
    row = stored_rows(engine)["5/1"]
    assert (row["on_sale"], row["ever_on_sale"]) == stored
