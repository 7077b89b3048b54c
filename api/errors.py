"""Every failure reaches the client in the spec's error envelope; tracebacks stay in the logs."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.envelope import ApiError, error_response
from core.store.reader import StoreUnavailable

log = logging.getLogger("api")

HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(
            str(part) for part in error.get("loc", ()) if part not in ("query", "path")
        )
        parts.append(
            f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid")
        )
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError):  # type: ignore[no-untyped-def]
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):  # type: ignore[no-untyped-def]
        return error_response(400, "invalid_parameter", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):  # type: ignore[no-untyped-def]
        code = HTTP_CODES.get(
            exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error"
        )
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    # Handlers for specific classes answer inside Starlette's ExceptionMiddleware, so an outage is
    # one log line per request; the catch-all below runs in ServerErrorMiddleware, which re-raises
    # after answering and so has the server log the traceback once.
    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_unavailable(request: Request, exc: Exception):  # type: ignore[no-untyped-def]
        reason = str(exc) if isinstance(exc, StoreUnavailable) else exc.__class__.__name__
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, reason)
        return error_response(
            500, "database_unavailable", "the event store is unreachable; try again shortly"
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, _exc: Exception):  # type: ignore[no-untyped-def]
        return error_response(500, "internal_error", "an unexpected error occurred")
