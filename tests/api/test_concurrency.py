"""Far more concurrent requests than connections or threads: every one is answered, none with a
5xx (before, a sync route held its pooled connection while the threadpool validated its answer, and
40 threads waited on 15 connections until the pool timeout failed them)."""

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.support.events import event, store
from tests.support.serving import marquee_serve

ORIGIN = datetime(2021, 3, 1)
CONCURRENT = 300


def window(n: int) -> str:
    start = ORIGIN + timedelta(hours=n)
    end = start + timedelta(hours=6)
    return f"/search?starts_at={start:%Y-%m-%dT%H:%M:%S}Z&ends_at={end:%Y-%m-%dT%H:%M:%S}Z"


async def storm(base: str, paths: list[str]) -> list[int]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    async with httpx.AsyncClient(base_url=base, timeout=90, limits=limits) as client:

        async def one(path: str) -> int:
            try:
                return (await client.get(path)).status_code
            except httpx.TransportError as exc:
                return -len(type(exc).__name__)  # a dropped connection counts as a failure

        return list(await asyncio.gather(*(one(path) for path in paths)))


@pytest.mark.timeout(180)
def test_hundreds_of_concurrent_searches_are_all_answered(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    store(engine, [event(f"e{n}", ORIGIN + timedelta(hours=n)) for n in range(3000)])
    with marquee_serve(tmp_path, {"DATABASE_URL": database_url}) as served:
        # Every request a different window: none can be answered from the cache.
        cold = asyncio.run(storm(served.base, [window(n * 7) for n in range(CONCURRENT)]))
        hot = asyncio.run(storm(served.base, [window(5)] * CONCURRENT))

    assert cold == [200] * CONCURRENT, sorted(set(cold))
    assert hot == [200] * CONCURRENT, sorted(set(hot))
