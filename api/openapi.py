"""The served OpenAPI document describes /search exactly as the contract file does."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

SPEC_PATH = Path(__file__).parent / "spec" / "swagger.yaml"

PROVIDER_PARAMETER = {
    "in": "query",
    "name": "provider",
    "required": False,
    "schema": {"type": "array", "items": {"type": "string"}},
    "style": "form",
    "explode": True,
    "description": "Return only events of these providers (repeatable); default: every enabled one",
}


ERROR_SCHEMA_REF = {"$ref": "#/components/responses/GenericError/content/application~1json/schema"}


@cache
def contract() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


ERROR_RESPONSES = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "404": {
        "description": "No such resource",
        "content": {"application/json": {"schema": ERROR_SCHEMA_REF}},
    },
    "500": {"$ref": "#/components/responses/GenericError"},
}


def _describe_errors(document: dict[str, Any]) -> None:
    """Every operation answers errors in the spec's envelope; FastAPI's 422 never reaches a client."""
    for path, operations in document["paths"].items():
        if path == "/search":
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            if operation.get("parameters"):
                responses.setdefault("400", ERROR_RESPONSES["400"])
            if "{" in path:
                responses.setdefault("404", ERROR_RESPONSES["404"])
            responses.setdefault("500", ERROR_RESPONSES["500"])
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        # 3.0, as the contract file: its `nullable: true` means nothing to a 3.1 reader.
        document = get_openapi(
            title=app.title, version=app.version, openapi_version="3.0.3", routes=app.routes
        )
        spec = contract()
        search = {**spec["paths"]["/search"]}
        search["get"] = {**search["get"]}
        search["get"]["parameters"] = [*search["get"]["parameters"], PROVIDER_PARAMETER]
        document["paths"]["/search"] = search
        components = document.setdefault("components", {})
        for section, items in spec["components"].items():
            components.setdefault(section, {}).update(items)
        _describe_errors(document)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
