"""The streaming download: size cap, deadline, and which failures are worth retrying."""

import io
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from sqlalchemy.engine import Engine

from core.download import download, retry_after_seconds
from core.errors import FeedError, PermanentError, TransientError
from core.ingest import fetch_provider
from core.registry import load_registry
from core.settings import Settings
from tests.providers.fever.feeds import fetch_fever, fever_body, stored_rows
from tests.support.feed_server import Answer, FeedServer


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def unframed_server() -> Iterator[str]:
    """An HTTP/1.0 server that streams 200 kB with no Content-Length, ending the body by closing."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                try:
                    connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/xml\r\n\r\n")
                    for _ in range(200):
                        connection.sendall(b"<!--" + b"x" * 1017 + b"-->")
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed"
    listener.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_download_writes_the_whole_body_into_the_sink(
    http: httpx.Client, feed_server: FeedServer
) -> None:
    body = fever_body("response_1.xml")
    sink = io.BytesIO()

    written = download(
        http, feed_server.serve("/feed", body), sink, max_bytes=10_000, timeout_seconds=5
    )

    assert (written, sink.getvalue()) == (len(body), body)


def test_download_refuses_streamed_body_without_content_length_over_the_cap(
    http: httpx.Client, unframed_server: str
) -> None:
    sink = io.BytesIO()

    with pytest.raises(FeedError, match="over the 50000-byte cap"):
        download(http, unframed_server, sink, max_bytes=50_000, timeout_seconds=5)

    assert len(sink.getvalue()) <= 50_000


def test_download_treats_503_as_transient_with_retry_after(
    http: httpx.Client, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/feed", Answer(b"busy", 503, {"Retry-After": "7"}))

    with pytest.raises(TransientError, match="HTTP 503") as caught:
        download(http, url, io.BytesIO(), max_bytes=10_000, timeout_seconds=5)

    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [408, 429, 500, 502])
def test_download_treats_timeouts_throttling_and_5xx_as_transient(
    status: int, http: httpx.Client, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/feed", Answer(b"no", status))

    with pytest.raises(TransientError, match=f"HTTP {status}"):
        download(http, url, io.BytesIO(), max_bytes=10_000, timeout_seconds=5)


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_download_treats_other_4xx_as_permanent(
    status: int, http: httpx.Client, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/feed", Answer(b"no", status))

    with pytest.raises(PermanentError, match=f"HTTP {status}") as caught:
        download(http, url, io.BytesIO(), max_bytes=10_000, timeout_seconds=5)

    assert not isinstance(caught.value, TransientError)


def test_download_treats_unreachable_host_as_transient(http: httpx.Client) -> None:
    url = f"http://127.0.0.1:{closed_port()}/feed"

    with pytest.raises(TransientError, match="connection failed"):
        download(http, url, io.BytesIO(), max_bytes=10_000, timeout_seconds=5)


def test_download_treats_slow_server_as_transient(
    http: httpx.Client, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/feed", Answer(b"<late/>", delay=2.0))

    with pytest.raises(TransientError, match="timed out"):
        download(http, url, io.BytesIO(), max_bytes=10_000, timeout_seconds=0.3)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    assert retry_after_seconds("30") == 30.0
    assert 100 < (retry_after_seconds(later) or 0) <= 120
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_fetch_failing_with_503_keeps_stored_events(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    before = stored_rows(engine)

    with pytest.raises(TransientError):
        fetch_fever(monkeypatch, engine, feed_server, Answer(b"down", 503))

    assert stored_rows(engine) == before


def test_fetch_of_unframed_body_over_the_cap_fails_and_keeps_stored_events(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, unframed_server: str
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    before = stored_rows(engine)
    monkeypatch.setenv("MARQUEE_FEVER_URL", unframed_server)
    monkeypatch.setenv("MARQUEE_FEVER_MAX_BYTES", "50000")

    with pytest.raises(FeedError, match="over the 50000-byte cap"):
        fetch_provider(load_registry(Settings()).get("fever"), engine=engine)

    assert stored_rows(engine) == before
