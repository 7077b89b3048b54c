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


@cache
def contract() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        spec = contract()
        search = {**spec["paths"]["/search"]}
        search["get"] = {**search["get"]}
        search["get"]["parameters"] = [*search["get"]["parameters"], PROVIDER_PARAMETER]
        document["paths"]["/search"] = search
        components = document.setdefault("components", {})
        for section, items in spec["components"].items():
            components.setdefault(section, {}).update(items)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
