"""The FastAPI application."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api import calendar, ops, status
from api.docs import documented_app
from api.errors import install_error_handlers
from api.head import HeadAsGet
from api.openapi import install_openapi
from api.routes import router
from api.searching import SearchService
from core.plugins.registry import Registry, load_registry
from core.runs.metrics import ScheduleCollector
from core.settings import Settings, get_settings
from core.store.db import create_api_engine, create_read_engine
from core.store.reader import SearchReader


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    try:
        yield
    finally:
        app.state.search.close()


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    registry: Registry | None = None,
) -> FastAPI:
    """Build the app; the registry is validated here so a bad configuration never serves."""
    settings = settings or get_settings()
    app = documented_app(
        title="Marquee",
        version="0.1.0",
        description="One search API over many ticketing providers.",
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine or create_api_engine(settings)
    app.state.registry = registry if registry is not None else load_registry(settings)
    # The search path has its own pool, on the same database as `engine`.
    reader = SearchReader(create_read_engine(settings, engine.url if engine else None))
    app.state.search = SearchService(reader, settings)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(calendar.router)
    app.include_router(status.router)
    app.include_router(ops.router)
    app.add_middleware(HeadAsGet)  # inside the metrics, which label HEAD requests as such
    ops.install_metrics(app)
    app.state.metrics.register(ScheduleCollector(app.state.registry))
    install_openapi(app)
    return app
