"""GET /events/{id}, and every other answer a client can get, in the spec's envelopes."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from core.ingest.normalise import event_uuid
from core.plugins.registry import load_registry
from core.settings import Settings
from tests.providers.fever.feeds import fetch_fever, fever_body
from tests.support.feed_server import FeedServer
from tests.support.spec import assert_matches_spec

CAMELA = str(event_uuid("fever", "291/291"))


@pytest.fixture
def sample(monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    fetch_fever(monkeypatch, engine, feed_server, fever_body("flip_offline.xml"))


def assert_error_envelope(response, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    # The contract's error envelope (BadRequest and GenericError share one schema).
    assert_matches_spec("/search", 400, body)
    assert body["data"] is None
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    return body["error"]["message"]


def test_event_by_id_returns_the_eight_keys_in_the_envelope(
    sample: None, client: TestClient
) -> None:
    response = client.get(f"/events/{CAMELA}")

    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "event": {
                "id": CAMELA,
                "title": "Camela en concierto",
                "start_date": "2021-06-30",
                "start_time": "21:00:00",
                "end_date": "2021-06-30",
                "end_time": "22:00:00",
                "min_price": 15.0,
                "max_price": 30.0,
            }
        },
        "error": None,
    }


def test_event_by_id_accepts_an_upper_case_uuid(sample: None, client: TestClient) -> None:
    response = client.get(f"/events/{CAMELA.upper()}")

    assert response.status_code == 200
    assert response.json()["data"]["event"]["id"] == CAMELA


def test_event_by_unknown_id_answers_404_envelope(sample: None, client: TestClient) -> None:
    unknown = uuid.uuid4()

    message = assert_error_envelope(client.get(f"/events/{unknown}"), 404, "not_found")

    assert str(unknown) in message


def test_event_never_on_sale_answers_404_like_an_unknown_one(
    sample: None, client: TestClient
) -> None:
    never_online = event_uuid("fever", "700/7001")

    assert_error_envelope(client.get(f"/events/{never_online}"), 404, "not_found")


def test_event_by_malformed_id_answers_400_envelope(client: TestClient) -> None:
    message = assert_error_envelope(client.get("/events/not-a-uuid"), 400, "invalid_parameter")

    assert "UUID" in message


def test_unknown_path_answers_404_envelope(client: TestClient) -> None:
    assert_error_envelope(client.get("/nowhere"), 404, "not_found")


def test_wrong_method_answers_405_envelope(client: TestClient) -> None:
    assert_error_envelope(client.post("/search"), 405, "method_not_allowed")


def test_event_of_a_disabled_provider_is_served_neither_by_id_nor_by_search(
    sample: None, settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_PROVIDERS", ",")  # none: an empty value means the default
    app = create_app(Settings(), engine=engine, registry=load_registry(Settings()))

    with TestClient(app, raise_server_exceptions=False) as client:
        assert_error_envelope(client.get(f"/events/{CAMELA}"), 404, "not_found")
        assert client.get("/search").json() == {"data": {"events": []}, "error": None}
