"""Helpers of the provider contract kit: an isolated plugin, the contract's EventSummary validator,
a one-feed HTTP server and a network block."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.plugins.contract import Provider
from core.plugins.hookspecs import hookimpl

KIT_PLUGIN = "contract-kit"

# The API contract's EventSummary (api/spec/swagger.yaml), carried here so the kit needs no API
# package; Marquee's own tests check that the two stay equal.
_TIME = {"type": "string", "format": "time", "nullable": True}
EVENT_SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "title",
        "start_date",
        "start_time",
        "end_date",
        "end_time",
        "min_price",
        "max_price",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Identifier for the plan (UUID)"},
        "title": {"type": "string", "description": "Title of the plan"},
        "start_date": {
            "type": "string",
            "format": "date",
            "description": "Date when the event starts in local time",
        },
        "start_time": {
            **_TIME,
            "example": "22:38:19",
            "description": "Time when the event starts in local time",
        },
        "end_date": {
            "type": "string",
            "format": "date",
            "nullable": True,
            "description": "Date when the event ends in local time",
        },
        "end_time": {
            **_TIME,
            "example": "14:45:15",
            "description": "Time when the event ends in local time",
        },
        "min_price": {
            "type": "number",
            "nullable": True,
            "description": "Min price from all the available tickets",
        },
        "max_price": {
            "type": "number",
            "nullable": True,
            "description": "Min price from all the available tickets",
        },
    },
}


class OneProvider:
    """A plugin contributing just the provider under test, so installed plugins cannot interfere."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    @hookimpl
    def register_providers(self) -> list[Provider]:
        return [self.provider]


def spec_format_checker() -> Any:
    """The spec's formats, with `time` read as a local time (the spec's example "22:38:19" carries
    no offset, which a strict RFC 3339 `time` check would refuse)."""
    from jsonschema import FormatChecker
    from openapi_schema_validator import OAS30Validator

    checker = FormatChecker()
    for name in ("date", "date-time", "uuid"):
        checker.checkers[name] = OAS30Validator.FORMAT_CHECKER.checkers[name]

    @checker.checks("time", raises=ValueError)
    def _local_time(value: object) -> bool:
        if isinstance(value, str):
            time.fromisoformat(value)
        return True

    return checker


@cache
def event_summary_validator() -> Any:
    """A validator for the contract's EventSummary."""
    from openapi_schema_validator import OAS30Validator

    return OAS30Validator(EVENT_SUMMARY_SCHEMA, format_checker=spec_format_checker())


@contextmanager
def serving(body: bytes) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 answering every GET with `body`; yields its URL."""

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed"
    finally:
        server.shutdown()
        server.server_close()


def block_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Make every outbound connection fail; return the list the attempts are recorded in (a
    provider may swallow the error, so the record is what the check reads)."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("the contract kit blocks the network during parse")

    for target, name in [
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "create_connection"),
        (socket, "getaddrinfo"),
    ]:
        monkeypatch.setattr(target, name, refuse)
    return attempts
