"""The OpenAPI document the app serves describes /search exactly as the contract file does."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from tests.support.spec import spec


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
    assert components["schemas"]["EventSummary"]["required"] == [
        "id",
        "title",
        "start_date",
        "start_time",
        "end_date",
        "end_time",
        "min_price",
        "max_price",
    ]
