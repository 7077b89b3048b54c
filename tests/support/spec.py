"""Validate responses against the contract file, the way a client generated from it would."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from marquee.testing.support import spec_format_checker

SPEC_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "swagger.yaml"
SPEC_URI = "urn:marquee:swagger"

FORMAT_CHECKER = spec_format_checker()
# The contract's EventSummary: exactly these keys, in this order.
EVENT_SUMMARY_KEYS = (
    "id",
    "title",
    "start_date",
    "start_time",
    "end_date",
    "end_time",
    "min_price",
    "max_price",
)


@cache
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def _validator(schema: dict[str, Any]) -> OAS30Validator:
    resource = Resource.from_contents(spec(), default_specification=DRAFT4)
    registry = Registry().with_resource(SPEC_URI, resource)
    return OAS30Validator(schema, registry=registry, format_checker=FORMAT_CHECKER)


def response_schema(path: str, status: int, method: str = "get") -> dict[str, Any]:
    response = spec()["paths"][path][method]["responses"][status]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = spec()["components"]["responses"][name]
    schema = response["content"]["application/json"]["schema"]
    return _rebase(schema)


def _rebase(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (SPEC_URI + value if key == "$ref" and value.startswith("#") else _rebase(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rebase(item) for item in node]
    return node


def assert_matches_spec(path: str, status: int, body: Any) -> None:
    """Fail with every violation when `body` is not what the contract says `path` answers."""
    validator = _validator(response_schema(path, status))
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
