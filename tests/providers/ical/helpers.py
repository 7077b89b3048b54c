"""Helpers to run the iCalendar parser on fixtures with a pinned clock."""

import io
from datetime import UTC, datetime
from typing import Any

from core.plugins.contract import InvalidItem, ParsedEvent, ParseResult
from providers.ical.plugin import IcalProvider
from providers.ical.settings import IcalSettings
from tests.conftest import fixture_bytes

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def ical_bytes(name: str) -> bytes:
    return fixture_bytes("ical", name)


def parse(body: bytes, *, now: datetime = NOW, **settings: Any) -> list[ParseResult]:
    """Every result of parsing `body` as feed `venue`, shown in Europe/Madrid unless told."""
    values = {"url": "http://127.0.0.1/venue.ics", "timezone": "Europe/Madrid", **settings}
    return list(IcalProvider("venue").parse(IcalSettings(**values), io.BytesIO(body), now=now))


def events(results: list[ParseResult]) -> dict[str, ParsedEvent]:
    return {result.key: result for result in results if isinstance(result, ParsedEvent)}


def invalid(results: list[ParseResult]) -> list[InvalidItem]:
    return [result for result in results if isinstance(result, InvalidItem)]
