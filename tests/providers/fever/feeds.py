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
