"""GET /search exactly as the contract says: inclusive bounds, order, eight keys, time rule, errors."""

import socket

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from core.ingest.normalise import event_uuid
from core.settings import Settings
from tests.providers.fever.feeds import fetch_fever, fever_body
from tests.support.feed_server import FeedServer
from tests.support.spec import EVENT_SUMMARY_KEYS, assert_matches_spec

EIGHT_KEYS = set(EVENT_SUMMARY_KEYS)


@pytest.fixture
def sample(monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer) -> None:
    """response_1 in UTC: 322 on Feb 10 20:00-21:30, 291 on Jun 30 21-22h, 1591 on Jul 31 20-21h."""
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))


def titles(client: TestClient, status: int = 200, **params: str) -> list[str]:
    response = client.get("/search", params=params)
    assert response.status_code == status, response.text
    assert_matches_spec("/search", status, response.json())
    return [event["title"] for event in response.json()["data"]["events"]]


def error_of(client: TestClient, query: str, status: int = 400) -> dict:
    response = client.get(f"/search?{query}")
    assert response.status_code == status, response.text
    assert_matches_spec("/search", status, response.json())
    assert response.json()["data"] is None
    return response.json()["error"]


def test_search_without_bounds_returns_every_event_by_start_in_the_spec_envelope(
    sample: None, client: TestClient
) -> None:
    response = client.get("/search")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert_matches_spec("/search", 200, body)
    assert set(body) == {"data", "error"} and body["error"] is None
    assert set(body["data"]) == {"events"}
    events = body["data"]["events"]
    assert [event["title"] for event in events] == [
        "Pantomima Full",
        "Camela en concierto",
        "Los Morancos",
    ]
    assert all(set(event) == EIGHT_KEYS for event in events)


def test_search_of_empty_store_returns_no_events(client: TestClient) -> None:
    assert titles(client) == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"starts_at": "2021-06-30T21:00:00Z"}, ["Camela en concierto", "Los Morancos"]),
        ({"starts_at": "2021-06-30T21:00:01Z"}, ["Los Morancos"]),
        ({"ends_at": "2021-06-30T22:00:00Z"}, ["Pantomima Full", "Camela en concierto"]),
        ({"ends_at": "2021-06-30T21:59:59Z"}, ["Pantomima Full"]),
        (
            {"starts_at": "2021-06-30T21:00:00Z", "ends_at": "2021-06-30T22:00:00Z"},
            ["Camela en concierto"],
        ),
        ({"starts_at": "2021-06-30T21:30:00Z", "ends_at": "2021-06-30T21:45:00Z"}, []),
        ({"starts_at": "2021-06-30T21:00:00Z", "ends_at": "2021-06-30T21:00:00Z"}, []),
    ],
)
def test_search_bounds_are_inclusive_on_start_and_end(
    sample: None, client: TestClient, params: dict, expected: list[str]
) -> None:
    assert titles(client, **params) == expected


def test_search_orders_events_starting_together_by_id(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, client: TestClient
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("same_start.xml"))
    together = sorted(str(event_uuid("fever", key)) for key in ("801/1", "802/1", "803/1"))

    body = client.get("/search").json()
    assert_matches_spec("/search", 200, body)
    events = body["data"]["events"]

    assert [event["id"] for event in events] == [str(event_uuid("fever", "803/2")), *together]


@pytest.fixture
def madrid(monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer) -> None:
    """response_1 as Madrid wall-clock: 291 starts 2021-06-30 21:00+02:00, i.e. 19:00Z."""
    fetch_fever(
        monkeypatch, engine, feed_server, fever_body("response_1.xml"), timezone="Europe/Madrid"
    )


def test_search_shows_the_feeds_wall_clock_time_in_the_provider_zone(
    madrid: None, client: TestClient
) -> None:
    body = client.get("/search").json()
    assert_matches_spec("/search", 200, body)
    camela = body["data"]["events"][1]

    assert camela["title"] == "Camela en concierto"
    assert (camela["start_date"], camela["start_time"]) == ("2021-06-30", "21:00:00")
    assert (camela["end_date"], camela["end_time"]) == ("2021-06-30", "22:00:00")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"starts_at": "2021-06-30T19:00:00Z"}, ["Camela en concierto", "Los Morancos"]),
        ({"starts_at": "2021-06-30T21:00:00+02:00"}, ["Camela en concierto", "Los Morancos"]),
        ({"starts_at": "2021-06-30T19:00:01Z"}, ["Los Morancos"]),
        ({"starts_at": "2021-06-30T21:00:00"}, ["Los Morancos"]),
        ({"ends_at": "2021-06-30T20:00:00"}, ["Pantomima Full", "Camela en concierto"]),
        ({"ends_at": "2021-06-30T22:00:00+02:00"}, ["Pantomima Full", "Camela en concierto"]),
        ({"ends_at": "2021-06-30T22:00:00+03:00"}, ["Pantomima Full"]),
    ],
)
def test_search_compares_offset_bounds_as_instants_and_reads_bare_bounds_as_utc(
    madrid: None, client: TestClient, params: dict, expected: list[str]
) -> None:
    assert titles(client, **params) == expected


def test_search_reads_unencoded_plus_offset_in_the_query_string(
    madrid: None, client: TestClient
) -> None:
    response = client.get("/search?starts_at=2021-06-30T21:00:00+02:00")

    assert response.status_code == 200, response.text
    assert_matches_spec("/search", 200, response.json())
    assert [e["title"] for e in response.json()["data"]["events"]] == [
        "Camela en concierto",
        "Los Morancos",
    ]


@pytest.mark.parametrize(
    "query",
    [
        "starts_at=yesterday",
        "starts_at=2021-06-30",
        "starts_at=2021-13-01T00:00:00Z",
        "ends_at=2021-06-31T10:00:00Z",
        "ends_at=",
        "ends_at=2021-06-30T21:00:00%2B25:00",
        "ends_at=9999-12-31T23:59:59-01:00",
        "starts_at=0001-01-01T00:00:00%2B01:00",
    ],
)
def test_search_answers_400_envelope_for_a_bad_date_time(client: TestClient, query: str) -> None:
    error = error_of(client, query)

    assert error["code"] == "invalid_parameter"
    assert query.split("=")[0] in error["message"]


def test_search_answers_400_envelope_when_starts_at_is_after_ends_at(client: TestClient) -> None:
    error = error_of(client, "starts_at=2021-07-01T00:00:00Z&ends_at=2021-06-30T00:00:00Z")

    assert error["code"] == "invalid_range"
    assert "starts_at" in error["message"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres@127.0.0.1:{closed_port()}/marquee",
        "sqlite:////nonexistent-dir/marquee.db",
    ],
)
@pytest.mark.timeout(20)  # a hang guard: an unreachable database must not stall the client
def test_search_answers_500_envelope_without_trace_when_database_is_unreachable(url: str) -> None:
    app = create_app(Settings(DATABASE_URL=url))

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/search")

    assert response.status_code == 500
    assert_matches_spec("/search", 500, response.json())
    assert response.json()["data"] is None
    assert response.json()["error"]["code"] == "database_unavailable"
    for leak in ("Traceback", "psycopg", "sqlite3", "OperationalError", "127.0.0.1"):
        assert leak not in response.text
