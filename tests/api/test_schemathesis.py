"""Generated requests against the contract file and the served /openapi.json, over the ASGI app on
both databases with a few events stored: no 5xx, answers that conform, errors in the envelope.
Bounded by example counts, so the whole run adds seconds, not minutes."""

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CheckContext
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import Engine

from api.app import create_app
from api.openapi import SPEC_PATH
from core.plugins.registry import Registry
from core.settings import Settings
from tests.providers.fever.feeds import fetch_fever, fever_body
from tests.support.feed_server import FeedServer
from tests.support.spec import assert_matches_spec

BOUND = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture
def app(
    settings: Settings,
    engine: Engine,
    registry: Registry,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> FastAPI:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    return create_app(settings, engine=engine, registry=registry)


# The contract's `format: time` values carry no offset ("14:45:15"), which a strict RFC 3339 check
# refuses; formats are checked by the project's own contract validator instead (tests/support/spec).
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"response_schema_conformance": {"validate-formats": False}}}
)


def errors_in_the_envelope(ctx: CheckContext, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is `{"error": {"code", "message"}, "data": null}`; every /search answer
    matches the contract, formats included."""
    if case.path == "/search" and response.status_code in (200, 400, 500):
        assert_matches_spec("/search", response.status_code, response.json())
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None
    body = response.json()
    assert set(body) == {"error", "data"} and body["data"] is None, body
    assert set(body["error"]) == {"code", "message"}, body
    return True


def _check(case: Any, base_url: str | None = None) -> None:
    # The contract accepts any string as a provider or an id; Marquee answers such a request with
    # a 400 it documents, which this check would count as refusing valid input.
    case.call_and_validate(
        base_url=base_url,
        excluded_checks=[positive_data_acceptance],
        additional_checks=[errors_in_the_envelope],
    )


def run_every_operation(schema: Any, base_url: str | None = None) -> list[str]:
    """Generated cases for each operation of `schema`, checked one by one; the operations run."""
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @BOUND
        def check(case: Any) -> None:
            _check(case, base_url)

        check()
        ran.append(f"{operation.method.upper()} {operation.path}")
    return ran


def test_served_openapi_holds_for_generated_requests(app: FastAPI) -> None:
    ran = run_every_operation(schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG))

    assert {"GET /search", "GET /events/{event_id}", "GET /providers", "GET /ready"} <= set(ran)


def test_contract_holds_for_generated_requests(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_path(SPEC_PATH, config=CONFIG)
    schema.app = app

    # The contract's `servers` names the challenge's host and base path; Marquee serves at the root.
    assert run_every_operation(schema, base_url="http://testserver") == ["GET /search"]
