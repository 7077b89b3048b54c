"""/docs (Swagger UI) and /redoc, served by Marquee itself with their scripts and styles: no CDN,
so both pages work on a machine cut off from the internet. The assets ship in fastapi-offline."""

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"


def documented_app(**options: Any) -> FastAPI:
    """A FastAPI app whose /docs and /redoc load everything from ASSETS_URL, on this server."""
    return FastAPIOffline(docs_url=DOCS_URL, redoc_url=REDOC_URL, static_url=ASSETS_URL, **options)
