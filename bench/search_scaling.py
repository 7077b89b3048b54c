"""Search latency depends on the window, not on how many events are stored.

Loads N and then 10*N events into a scratch database through the common upsert, and
times a narrow-window search (about 50 results) at both sizes; prints the median latencies and
their ratio. Also prints upsert throughput of a first load and of an unchanged refetch.
Runs on PostgreSQL and on SQLite (the `make run` default). PostgreSQL: MARQUEE_BENCH_POSTGRES_URL
(default: postgres@127.0.0.1:5432).
"""

import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from core.ingest.normalise import normalise
from core.plugins.contract import ParsedEvent
from core.settings import Settings
from core.store.db import create_db_engine
from core.store.migrate import upgrade
from core.store.search import search_events
from core.store.upsert import upsert_events

ADMIN_URL = os.environ.get(
    "MARQUEE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ORIGIN = datetime(2020, 1, 1)


def rows(start: int, count: int) -> list[dict]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("UTC")
    out = []
    for i in range(start, start + count):
        begins = ORIGIN + timedelta(minutes=37 * i)
        event = ParsedEvent(
            str(i), f"Event {i}", begins, begins + timedelta(hours=2), True, 10.0, 20.0
        )
        out.append(normalise("bench", zone, event))
    return out


def load(engine: sa.Engine, start: int, count: int, batch: int = 1000) -> float:
    began = time.perf_counter()
    for offset in range(start, start + count, batch):
        with Session(engine) as session, session.begin():
            upsert_events(
                session, rows(offset, min(batch, start + count - offset)), now=datetime.now(UTC)
            )
    return count / (time.perf_counter() - began)


def median_search_ms(engine: sa.Engine, total: int, repeats: int = 200) -> float:
    timings = []
    with Session(engine) as session:
        for r in range(repeats):
            # A window of ~50 events placed across the whole stored range.
            middle = ORIGIN + timedelta(minutes=37 * ((r * 7919) % max(1, total - 60)))
            began = time.perf_counter()
            found = search_events(
                session=session,
                starts_at=middle.replace(tzinfo=UTC),
                ends_at=(middle + timedelta(minutes=37 * 50)).replace(tzinfo=UTC),
                providers=["bench"],
            )
            timings.append((time.perf_counter() - began) * 1000)
            assert 40 <= len(found) <= 51, len(found)
    return statistics.median(timings)


def measure(label: str, url: str, small: int) -> None:
    """Load, time, print. PostgreSQL gets ANALYZE as autovacuum would give it; SQLite gets
    nothing, as under `make run`, which never analyzes."""
    upgrade(url)
    engine = create_db_engine(Settings(DATABASE_URL=url))
    analyze = engine.dialect.name == "postgresql"
    try:
        insert_rate = load(engine, 0, small)
        refetch_rate = load(engine, 0, small)
        if analyze:
            with engine.begin() as connection:
                connection.execute(sa.text("ANALYZE event"))
        small_ms = median_search_ms(engine, small)
        load(engine, small, small * 9)
        if analyze:
            with engine.begin() as connection:
                connection.execute(sa.text("ANALYZE event"))
        large_ms = median_search_ms(engine, small * 10)
    finally:
        engine.dispose()
    print(
        f"[{label}] upsert: {insert_rate:,.0f} events/s first load, {refetch_rate:,.0f} events/s unchanged refetch"
    )
    print(f"[{label}] narrow search, {small:>7} events stored: median {small_ms:.2f} ms")
    print(f"[{label}] narrow search, {small * 10:>7} events stored: median {large_ms:.2f} ms")
    print(
        f"[{label}] latency ratio at 10x the data: {large_ms / small_ms:.2f}x (index target: < 2x)"
    )


def main() -> None:
    small = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    name = f"marquee_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        measure("postgresql", url, small)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    with tempfile.TemporaryDirectory() as scratch:
        measure("sqlite", f"sqlite:///{Path(scratch) / 'bench.db'}", small)


if __name__ == "__main__":
    main()
