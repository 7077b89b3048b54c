"""The fast renderer gives, byte for byte, what the reference renderer (`event_summary`, as FastAPI's
JSONResponse encoded it) gives: for odd titles and prices, all-day events, and streamed answers."""

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.store.search import event_summary, search_events
from tests.support.events import event, store

ODD_TITLES = [
    'quotes " and \\ backslash',
    "ñandú, 日本語, emoji 😀, RTL \u05d0",
    "controls \x01\x07\x1f tab\tnewline\nreturn\r",
    "separators \u2028 \u2029 and BOM \ufeff, DEL \x7f",
    "</script><b>html</b> & 'apostrophes'",
]
ODD_PRICES = [
    (None, None),
    (0.0, 0.0),
    (0.1, 0.2),
    (1e16, 1e16),
    (1e-7, 1e-5),
    (0.0001, 0.00012),
    (123456789.125, 123456789.125),
    (5e-324, 1.7976931348623157e308),
    (1e15, 9999999999999998.0),
    (19.99, 1e22),
]
START = datetime(2021, 6, 1, 20, 0)


# What FastAPI did with a route's `-> dict[str, Any]` answer: pydantic-core's JSON of that type.
# (Not json.dumps: the two write 1e-07 / 1e-7 and 1e-05 / 0.00001 differently.)
FASTAPI = TypeAdapter(dict[str, Any])


def reference(engine: Engine, providers: list[str], **bounds: datetime) -> bytes:
    """The answer before the fast path: `ok({"events": [event_summary(row)…]})` as FastAPI sent it."""
    with Session(engine) as session:
        rows = search_events(session=session, providers=providers, **bounds)
    return FASTAPI.dump_json(
        {"data": {"events": [event_summary(row) for row in rows]}, "error": None}
    )


@pytest.fixture
def odd_events(engine: Engine) -> None:
    events = []
    for i, (low, high) in enumerate(ODD_PRICES):
        title = ODD_TITLES[i % len(ODD_TITLES)] + f" #{i}"
        start = START + timedelta(hours=i, microseconds=123456 * (i % 2))
        events.append(
            event(f"p{i}", start, start + timedelta(hours=2), title=title, prices=(low, high))
        )
    # All-day events (null times), one of one day and one of three; one with no end.
    events.append(event("allday1", date(2021, 6, 3), date(2021, 6, 3), prices=(None, None)))
    events.append(event("allday3", date(2021, 6, 4), date(2021, 6, 6)))
    events.append(event("noend", datetime(2021, 6, 2, 9, 30, 15)))
    # Many events starting together, ordered by id.
    events.extend(event(f"same{i}", datetime(2021, 6, 5, 12)) for i in range(30))
    store(engine, events)


def test_search_answers_the_reference_bytes_for_odd_titles_prices_and_times(
    odd_events: None, client: TestClient, engine: Engine
) -> None:
    for params, bounds in [
        ("", {}),
        (
            "?starts_at=2021-06-01T22:00:00Z",
            {"starts_at": datetime.fromisoformat("2021-06-01T22:00:00+00:00")},
        ),
        (
            "?ends_at=2021-06-05T12:00:00Z",
            {"ends_at": datetime.fromisoformat("2021-06-05T12:00:00+00:00")},
        ),
    ]:
        response = client.get(f"/search{params}")
        assert response.status_code == 200
        assert response.content == reference(engine, ["fever"], **bounds), params
    assert len(response.json()["data"]["events"]) > 10


def test_a_streamed_answer_is_the_reference_bytes(
    odd_events: None, client: TestClient, engine: Engine
) -> None:
    # Chunks of 7 rows: the 43 events come as 7 statements, each continuing after the last row.
    client.app.state.search.reader.chunk_rows = 7  # type: ignore[attr-defined]
    response = client.get("/search")

    assert response.status_code == 200
    assert "content-length" not in response.headers  # streamed, not built whole
    assert response.content == reference(engine, ["fever"])
    assert len(response.json()["data"]["events"]) == 43


def test_event_by_id_answers_the_reference_bytes(
    odd_events: None, client: TestClient, engine: Engine
) -> None:
    with Session(engine) as session:
        rows = search_events(session=session, providers=["fever"])
    for row in rows[:12]:
        expected = FASTAPI.dump_json({"data": {"event": event_summary(row)}, "error": None})
        assert client.get(f"/events/{row.id}").content == expected
