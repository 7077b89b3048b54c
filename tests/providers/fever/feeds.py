"""Helpers to fetch the Fever provider through the real path: env vars, registry, HTTP, upsert."""

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ingest.pipeline import FetchReport, fetch_provider
from core.plugins.registry import load_registry
from core.settings import Settings
from core.store.models import Event
from tests.conftest import fixture_bytes
from tests.support.feed_server import Answer, FeedServer

FEED_PATH = "/api/events"


def fever_body(name: str) -> bytes:
    return fixture_bytes("fever", name)


def fetch_fever(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    body: bytes | Answer,
    *,
    batch_size: int = 500,
    **env: str,
) -> FetchReport:
    """Serve `body` at the feed URL, point MARQUEE_FEVER_URL at it and run one real fetch."""
    url = feed_server.serve(FEED_PATH, body)
    monkeypatch.setenv("MARQUEE_FEVER_URL", url)
    for name, value in env.items():
        monkeypatch.setenv(f"MARQUEE_FEVER_{name.upper()}", value)
    entry = load_registry(Settings()).configured("fever")
    return fetch_provider(entry, engine=engine, batch_size=batch_size)


def counts(report: FetchReport) -> tuple[int, int, int, int]:
    return report.inserted, report.updated, report.unchanged, report.skipped


def stored_rows(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every stored event (searchable or not) by its feed key, as plain dicts."""
    table = Event.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table)).mappings().all()
    return {row["external_id"]: dict(row) for row in rows}


def event_xml(
    event_id: str = "1",
    start: str = "2021-06-30T21:00:00",
    end: str = "2021-06-30T22:00:00",
    prices: tuple[str, ...] = ("12.00",),
) -> str:
    zones = "".join(
        f'<zone zone_id="{n}" capacity="10" price="{price}" name="Z{n}" numbered="false"/>'
        for n, price in enumerate(prices)
    )
    return (
        f'<event event_start_date="{start}" event_end_date="{end}" event_id="{event_id}" '
        f'sold_out="false">{zones}</event>'
    )


def base_xml(
    base_id: str, *events: str, title: str | None = "Show", sell_mode: str | None = "online"
) -> str:
    """A base event holding `events` (one default event if none); a None attribute is left out."""
    attributes = {"base_event_id": base_id, "sell_mode": sell_mode, "title": title}
    shown = " ".join(f'{name}="{value}"' for name, value in attributes.items() if value is not None)
    return f"<base_event {shown}>" + "".join(events or (event_xml(),)) + "</base_event>"


def feed_xml(*bases: str) -> bytes:
    """A Fever feed (eventList vocabulary) holding these base events."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><eventList version="1.0"><output>'
        + "".join(bases)
        + "</output></eventList>"
    ).encode()
