"""Retention driven as an operator sees it: real fetches of a local Fever feed, real passes, and the
store read back. Days are made to pass by moving the store's own timestamps back (no clock is
mocked): an event's inactivity is its provider's latest successful fetch minus its last sighting."""

import gzip
import json
import os
import subprocess
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ingest.normalise import event_uuid
from core.ingest.pipeline import FetchReport, fetch_provider
from core.plugins.registry import load_registry
from core.scheduling.context import build_context
from core.scheduling.retention import RetentionResult, run_retention
from core.settings import Settings
from core.store.db import transaction
from core.store.models import Event, EventTombstone, ProviderState, Trigger
from core.store.search import search_events
from tests.providers.fever.feeds import FEED_PATH, base_xml, event_xml, feed_xml
from tests.support.feed_server import Answer, FeedServer
from tests.support.serving import MARQUEE

EVENTS = Event.__table__  # type: ignore[attr-defined]
TOMBSTONES = EventTombstone.__table__  # type: ignore[attr-defined]
STATES = ProviderState.__table__  # type: ignore[attr-defined]


# --- feeds -----------------------------------------------------------------------------------------


def key(n: int) -> str:
    """The Fever key of show `n` (base n, event n)."""
    return f"{n}/{n}"


def event_id(n: int, provider: str = "fever") -> uuid.UUID:
    return event_uuid(provider, key(n))


def show(n: int, *, title: str | None = None, price: float = 12.0, online: bool = True) -> str:
    """One base event holding one event, keyed `n/n`."""
    return base_xml(
        str(n),
        event_xml(str(n), prices=(f"{price:.2f}",)),
        title=title or f"Show {n}",
        sell_mode="online" if online else "offline",
    )


def feed(*shows: int | str) -> bytes:
    """A Fever feed of these shows (numbers: default shows; strings: `show(...)` output)."""
    return feed_xml(*(show(s) if isinstance(s, int) else s for s in shows))


def fetch(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    feed_server: FeedServer,
    body: bytes | Answer,
    *,
    extra_plugins: dict[str, object] | None = None,
) -> FetchReport:
    """Serve `body` as the Fever feed and run one real fetch of it."""
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.serve(FEED_PATH, body))
    entry = load_registry(Settings(), extra_plugins=extra_plugins).configured("fever")
    return fetch_provider(entry, engine=engine)


# --- retention -------------------------------------------------------------------------------------


def retain(
    engine: Engine,
    *,
    dry_run: bool = False,
    providers: list[str] | None = None,
    extra_plugins: dict[str, object] | None = None,
) -> dict[str, RetentionResult]:
    """One `run_retention` with the environment's settings right now; results by provider."""
    settings = Settings()
    registry = load_registry(settings, extra_plugins=extra_plugins)
    context = build_context(settings, engine=engine, registry=registry)
    results = run_retention(context, trigger=Trigger.CLI, providers=providers, dry_run=dry_run)
    return {result.provider: result for result in results}


def moved(result: RetentionResult) -> tuple[int, int, int]:
    assert not result.failed, result.error
    return result.counts.hidden, result.counts.archived, result.counts.purged


# --- making days pass: the store's own timestamps moved back ---------------------------------------


def _shift(engine: Engine, table: sa.Table, column: str, days: float, where: Any) -> None:
    key_column = table.c.id if "id" in table.c else table.c.provider
    with transaction(engine) as session:
        rows = session.execute(sa.select(key_column, table.c[column]).where(where)).all()
        for row_key, value in rows:
            session.execute(
                sa.update(table)
                .where(key_column == row_key)
                .values({column: value - timedelta(days=days)})
            )


def age_absent(engine: Engine, days: float, *shows: int, provider: str = "fever") -> None:
    """As if the provider's fetches had gone on `days` longer since these shows (default: every
    absent event, and every tombstone) were last seen."""
    for table in (EVENTS, TOMBSTONES):
        where = sa.and_(table.c.provider == provider, table.c.last_seen_at.is_not(None))
        if shows:
            where = sa.and_(where, table.c.id.in_([event_id(n, provider) for n in shows]))
        _shift(engine, table, "last_seen_at", days, where)


def wall_clock_passes(engine: Engine, days: float, provider: str = "fever") -> None:
    """`days` of wall time pass with no successful fetch: every stored instant moves back."""
    _shift(engine, STATES, "last_success_at", days, STATES.c.provider == provider)
    age_absent(engine, days, provider=provider)


def last_success_at(engine: Engine, provider: str = "fever") -> datetime | None:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(STATES.c.last_success_at).where(STATES.c.provider == provider)
        ).scalar()


# --- reading the store back ------------------------------------------------------------------------


def rows(engine: Engine, table: sa.Table = EVENTS) -> dict[uuid.UUID, dict[str, Any]]:
    with engine.connect() as connection:
        found = connection.execute(sa.select(table)).mappings().all()
    return {row["id"]: dict(row) for row in found}


def stored(engine: Engine) -> set[uuid.UUID]:
    return set(rows(engine))


def hidden(engine: Engine) -> set[uuid.UUID]:
    return {id_ for id_, row in rows(engine).items() if row["hidden_at"] is not None}


def tombstones(engine: Engine) -> dict[uuid.UUID, dict[str, Any]]:
    return rows(engine, TOMBSTONES)


def served(engine: Engine) -> set[uuid.UUID]:
    """The ids /search serves (the same predicate, read straight from the store)."""
    with transaction(engine) as session:
        return {row.id for row in search_events(session=session)}


def snapshot(engine: Engine) -> tuple[dict[uuid.UUID, dict[str, Any]], ...]:
    """Everything retention may change."""
    return rows(engine), rows(engine, TOMBSTONES)


def ids(*shows: int) -> set[uuid.UUID]:
    return {event_id(n) for n in shows}


def archive_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl.gz")) if directory.exists() else []


def archive_lines(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


# --- the real console script -----------------------------------------------------------------------


def marquee(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MARQUEE, *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
