"""A database that freezes (through a local TCP proxy that stops forwarding) or drops connections
mid-statement: every request still ends within DATABASE_CONNECT_TIMEOUT_SECONDS + 1 s in the
`database_unavailable` envelope, /search recovers by itself, and no log line carries a statement's
parameters."""

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.support.events import event, store
from tests.support.feed_server import FeedServer
from tests.support.serving import MARQUEE, marquee_serve
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

TIMEOUT = 1.0
UNAVAILABLE = {
    "error": {
        "code": "database_unavailable",
        "message": "the event store is unreachable; try again shortly",
    },
    "data": None,
}
ORIGIN = datetime(2021, 3, 1)


def window(n: int) -> str:
    start = ORIGIN + timedelta(hours=n)
    return f"starts_at={start:%Y-%m-%dT%H:%M:%S}Z&ends_at={start + timedelta(hours=2):%Y-%m-%dT%H:%M:%S}Z"


def through(proxy: TcpProxy, database_url: str) -> str:
    url = sa.make_url(database_url)
    return url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = sa.make_url(database_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
def server(
    proxy: TcpProxy, database_url: str, engine: Engine, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    store(
        engine,
        [
            event(f"e{n}", ORIGIN + timedelta(hours=n), title=f"Secret title {n}")
            for n in range(200)
        ],
    )
    env = {
        "DATABASE_URL": through(proxy, database_url),
        "DATABASE_CONNECT_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    with marquee_serve(tmp_path, env) as served:
        try:
            yield served.base, served.log
        finally:
            proxy.thaw()  # before the server stops: its shutdown waits for requests in flight


def concurrently(client: httpx.Client, paths: list[str]) -> list[tuple[int, dict, float]]:
    """One request per path, all at once (threads released together), each timed alone."""
    results: list[tuple[int, dict, float]] = [(0, {}, 0.0)] * len(paths)
    barrier = threading.Barrier(len(paths))

    def one(i: int, path: str) -> None:
        barrier.wait()
        started = time.monotonic()
        response = client.get(path)
        results[i] = (response.status_code, response.json(), time.monotonic() - started)

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.timeout(120)
def test_a_frozen_database_gives_every_request_a_prompt_500_and_search_recovers(
    server: tuple[str, Path], proxy: TcpProxy
) -> None:
    base, log = server
    # Keep-alive connections from the warm-up serve the frozen round: only the server is timed.
    client = httpx.Client(
        base_url=base, timeout=30, limits=httpx.Limits(max_keepalive_connections=20)
    )
    # Fill the pool: these requests leave open connections behind, the ones a freeze strands.
    warm = concurrently(client, [f"/search?{window(n)}" for n in range(20)])
    assert [status for status, _, _ in warm] == [200] * 20
    assert warm[3][1]["data"]["events"][0]["title"] == "Secret title 3"

    proxy.freeze()
    frozen = concurrently(client, [f"/search?{window(n)}" for n in range(100, 120)])

    assert [(status, body) for status, body, _ in frozen] == [(500, UNAVAILABLE)] * 20
    slowest = max(seconds for _, _, seconds in frozen)
    assert slowest <= TIMEOUT + 1, f"slowest answer took {slowest:.2f} s"
    # The operator routes are bounded too: the connection they hold is cut at the timeout.
    started = time.monotonic()
    providers = client.get("/providers")
    assert (providers.status_code, providers.json()["error"]["code"]) == (
        500,
        "database_unavailable",
    )
    assert time.monotonic() - started <= TIMEOUT + 2

    proxy.thaw()
    deadline, status = time.monotonic() + 20, 0
    while time.monotonic() < deadline and status != 200:
        status = httpx.get(f"{base}/search?{window(150)}", timeout=10).status_code
        time.sleep(0.2)
    assert status == 200
    answer = httpx.get(f"{base}/search?{window(5)}", timeout=10).json()
    assert answer["data"]["events"][0]["title"] == "Secret title 5"
    text = log.read_text()
    assert "database unavailable on GET /search" in text
    assert "2021-03-05" not in text and "Secret title" not in text  # no parameter, no row


def feed(events: int) -> bytes:
    items = "".join(
        f'<base_event base_event_id="{i}" sell_mode="online" title="Secret title {i}">'
        f'<event event_start_date="2021-07-01T20:00:00" event_end_date="2021-07-01T22:00:00" '
        f'event_id="{i}" sell_from="2021-01-01T00:00:00" sell_to="2021-07-01T19:00:00" sold_out="false">'
        f'<zone zone_id="1" capacity="10" price="12.00" name="Zone" numbered="false"/></event></base_event>'
        for i in range(events)
    )
    return f'<?xml version="1.0"?><eventList version="1.0"><output>{items}</output></eventList>'.encode()


@pytest.mark.timeout(120)
def test_a_database_lost_mid_ingest_logs_no_statement_parameters(
    database_url: str, engine: Engine, feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.serve("/fever", feed(3000))
    target = sa.make_url(database_url)
    # Dropped once the first upsert batches are on their way: the fetch fails mid-transaction.
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432, cut_after_bytes=60_000) as proxy:
        done = subprocess.run(
            [MARQUEE, "fetch", "fever"],
            env={
                **os.environ,
                "DATABASE_URL": through(proxy, database_url),
                "MARQUEE_FEVER_URL": url,
                "MARQUEE_BATCH_SIZE": "100",
                "MARQUEE_LOG_LEVEL": "DEBUG",
            },
            cwd=tmp_path, capture_output=True, text=True, timeout=90,
        )  # fmt: skip
        assert proxy.cuts >= 1
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Secret title" not in output, output[-3000:]
    assert "[parameters:" not in output
    with engine.connect() as connection:
        errors = connection.execute(sa.text("SELECT error FROM fetch_run")).scalars().all()
        stored = connection.execute(sa.text("SELECT count(*) FROM event")).scalar()
    assert stored == 0  # the whole fetch is one transaction
    assert not any("Secret title" in (error or "") for error in errors), errors
