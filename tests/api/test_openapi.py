"""The OpenAPI document the app serves describes /search exactly as the contract file does."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from tests.support.spec import EVENT_SUMMARY_KEYS, spec


@pytest.fixture
def served(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def contract_search() -> dict[str, Any]:
    return spec()["paths"]["/search"]["get"]


def test_served_document_is_a_valid_openapi_document(served: dict[str, Any]) -> None:
    validate(served)


def test_served_search_has_the_contracts_operation_and_summary(served: dict[str, Any]) -> None:
    search = served["paths"]["/search"]["get"]

    assert search["operationId"] == contract_search()["operationId"] == "searchEvents"
    assert search["summary"] == contract_search()["summary"]


def test_served_search_declares_every_contract_parameter_unchanged(
    served: dict[str, Any],
) -> None:
    parameters = {p["name"]: p for p in served["paths"]["/search"]["get"]["parameters"]}

    for parameter in contract_search()["parameters"]:
        assert parameters[parameter["name"]] == parameter
    assert parameters["starts_at"]["schema"]["format"] == "date-time"
    # Anything added beyond the contract is optional, so a contract client keeps working.
    extra = set(parameters) - {p["name"] for p in contract_search()["parameters"]}
    assert all(not parameters[name].get("required") for name in extra)


def test_served_search_responses_match_the_contract(served: dict[str, Any]) -> None:
    responses = served["paths"]["/search"]["get"]["responses"]

    assert {str(code) for code in responses} == {
        str(code) for code in contract_search()["responses"]
    }
    for code, response in contract_search()["responses"].items():
        assert responses[str(code)] == response


def test_served_components_define_the_contracts_schemas_and_responses(
    served: dict[str, Any],
) -> None:
    components = served["components"]

    for section in ("schemas", "responses"):
        for name, definition in spec()["components"][section].items():
            assert components[section][name] == definition, f"{section}/{name}"
    assert components["schemas"]["EventSummary"]["required"] == list(EVENT_SUMMARY_KEYS)


def test_served_document_is_openapi_3_0_so_nullable_keeps_its_meaning(
    served: dict[str, Any],
) -> None:
    # The contract's `nullable: true` is an OpenAPI 3.0 keyword; a 3.1 reader ignores it and would
    # reject an all-day event's null start_time.
    assert served["openapi"].startswith("3.0.")


def test_no_operation_documents_fastapis_422(served: dict[str, Any]) -> None:
    documented = {
        (path, method): set(operation["responses"])
        for path, operations in served["paths"].items()
        for method, operation in operations.items()
    }
    assert not [where for where, codes in documented.items() if "422" in codes]
    assert {"200", "400", "404", "500"} <= documented[("/events/{event_id}", "get")]
    assert "503" in documented[("/ready", "get")]


def test_an_all_day_event_without_prices_validates_against_the_served_schema(
    served: dict[str, Any],
) -> None:
    from openapi_schema_validator import OAS30Validator

    event = {
        "id": "2fb4b80a-2718-5c33-b6d0-0ba0d04be9bd",
        "title": "Festival",
        "start_date": "2021-07-01",
        "start_time": None,
        "end_date": "2021-07-03",
        "end_time": None,
        "min_price": None,
        "max_price": None,
    }
    validator = OAS30Validator(served["components"]["schemas"]["EventSummary"])
    assert not list(validator.iter_errors(event))
