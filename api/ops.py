"""Operator endpoints: /health, /ready, /metrics, and the request metrics behind /metrics."""

import logging
import time
from functools import partial
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.envelope import error_response, ok
from core.runs.metrics import StoreCollector, ping_database
from core.store.migrate import schema_is_behind, schema_revisions

log = logging.getLogger("api")

router = APIRouter(tags=["operations"])

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


@router.get(
    "/health",
    operation_id="getHealth",
    summary="Liveness: the process answers; touches nothing else",
)
async def health() -> dict[str, Any]:
    return ok({"status": "ok"})


@router.get(
    "/ready",
    operation_id="getReadiness",
    summary="Readiness: the database answers, else 503",
    responses={503: {"description": "The database is unreachable (error envelope)"}},
)
async def ready(request: Request) -> Any:
    engine = request.app.state.engine
    timeout = request.app.state.settings.DATABASE_CONNECT_TIMEOUT_SECONDS
    check = partial(_store_revisions, engine, timeout_seconds=timeout)
    try:
        # The thread is abandoned if the database hangs, so the probe itself answers in time.
        with anyio.fail_after(timeout):
            current, head = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    except (SQLAlchemyError, TimeoutError) as exc:
        log.warning("not ready: database unreachable (%s)", exc.__class__.__name__)
        return error_response(503, "database_unavailable", "the event store is unreachable")
    if schema_is_behind(current, head):
        # Reachable but not migrated (say, back from a restore): serving would answer 500s.
        log.warning("not ready: database schema at %s, this version needs %s", current, head)
        return error_response(
            503, "schema_outdated", "the event store's schema is not this version's; run migrations"
        )
    return ok({"status": "ready"})


def _store_revisions(engine: Engine, *, timeout_seconds: float) -> tuple[str | None, str | None]:
    ping_database(engine, timeout_seconds=timeout_seconds)
    return schema_revisions(engine)


@router.get(
    "/metrics", operation_id="getMetrics", summary="Prometheus metrics", response_class=Response
)
def metrics(request: Request) -> Response:
    # A plain def: the store collector queries the database, so this runs in the threadpool.
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Counts and times every HTTP request by route template, so labels stay few."""

    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency
        # Each labelled child, looked up once: `labels()` costs more than the hot route's work.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, record_status)
        finally:
            # The router writes the matched route into the shared scope; raw paths never label.
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            timer = self._timers.get((method, route))
            if timer is None:
                timer = self._timers[(method, route)] = self.latency.labels(method, route)
            timer.observe(time.perf_counter() - started)
            counter = self._counters.get((method, route, status))
            if counter is None:
                counter = self.requests.labels(method, route, str(status))
                self._counters[(method, route, status)] = counter
            counter.inc()


def install_metrics(app: FastAPI) -> None:
    """Give the app its own registry, so several apps in one process never share series."""
    registry = CollectorRegistry()
    registry.register(
        StoreCollector(
            app.state.engine, timeout_seconds=app.state.settings.DATABASE_CONNECT_TIMEOUT_SECONDS
        )
    )
    requests = Counter(
        "marquee_http_requests",
        "HTTP requests by method, route template and status",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "marquee_http_request_duration_seconds",
        "HTTP request latency by method and route template",
        ["method", "route"],
        registry=registry,
    )
    app.state.metrics = registry
    app.add_middleware(RequestMetrics, requests=requests, latency=latency)
