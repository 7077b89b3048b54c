"""The streaming download: size cap, deadline, and which failures are worth retrying."""

import gzip
import io
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from sqlalchemy.engine import Engine

from core.errors import FeedError, PermanentError, TransientError
from core.feeds.download import download, retry_after_seconds
from core.ingest.pipeline import fetch_provider
from core.plugins.registry import load_registry
from core.settings import Settings
from tests.providers.fever.feeds import fetch_fever, fever_body, stored_rows
from tests.support.fault_feed import FaultFeed, Reply, deflate_of_zeros, gzip_of_zeros
from tests.support.feed_server import Answer, FeedServer


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def fault_feed() -> Iterator[FaultFeed]:
    server = FaultFeed().start()
    yield server
    server.stop()


def raw_http_server(answer: Callable[[socket.socket], None]) -> socket.socket:
    """A listener on 127.0.0.1 that hands each connection, in its own thread, to `answer`: for
    answers http.server cannot give (no framing, a byte at a time). Close it to stop."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


@pytest.fixture
def unframed_server() -> Iterator[str]:
    """An HTTP/1.0 server that streams 200 kB with no Content-Length, ending the body by closing."""

    def answer(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/xml\r\n\r\n")
                for _ in range(200):
                    connection.sendall(b"<!--" + b"x" * 1017 + b"-->")
            except OSError:
                pass

    listener = raw_http_server(answer)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed"
    listener.close()


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """Sends one byte every 0.3 s, never finishing: in the status line and headers for /headers, in a
    body framed by Content-Length for /framed, in a body ended by closing for /unframed."""
    stop = threading.Event()

    def trickle(connection: socket.socket, data: bytes) -> None:
        for byte in data:
            if stop.wait(0.3):
                return
            connection.sendall(bytes([byte]))

    def answer(connection: socket.socket) -> None:
        with connection:
            path = connection.recv(65536).split(b" ")[1]
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
            try:
                if path == b"/headers":
                    trickle(connection, head + b"X-Slow: " + b"x" * 1000)
                elif path == b"/framed":
                    connection.sendall(head + b"Content-Length: 100000\r\n\r\n")
                    trickle(connection, b"<" * 100_000)
                else:
                    connection.sendall(head.replace(b"1.1", b"1.0") + b"\r\n")
                    trickle(connection, b"<" * 100_000)
            except OSError:
                pass

    listener = raw_http_server(answer)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
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

    # The read timeout and the whole-download deadline are both 0.3 s here: either may report it.
    with pytest.raises(TransientError, match=r"timed out|took longer than 0\.3s"):
        download(http, url, io.BytesIO(), max_bytes=10_000, timeout_seconds=0.3)


@pytest.mark.parametrize("path", ["/headers", "/framed", "/unframed"])
def test_download_gives_up_at_the_deadline_on_a_server_trickling_bytes(
    path: str, http: httpx.Client, trickling_server: str
) -> None:
    sink = io.BytesIO()
    started = time.monotonic()

    with pytest.raises(TransientError, match="download took longer than 1s"):
        download(http, trickling_server + path, sink, max_bytes=1_000_000, timeout_seconds=1)

    # A bound on behaviour, not speed: each byte arrives well within the read timeout, so only a
    # whole-download deadline stops this (without one it runs for 30 000 s).
    assert time.monotonic() - started < 1 + 2


def test_retry_after_reads_seconds_and_http_dates() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)

    assert retry_after_seconds("30") == 30.0
    assert 100 < (retry_after_seconds(later) or 0) <= 120
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(
    "header",
    ["²", "1e3", "-5", "Mon, 01 Jan 99999 00:00:00 GMT", "Wed, 32 Nov 2026 25:00:00 GMT"],
)
def test_retry_after_that_is_no_hint_is_ignored_rather_than_an_error(header: str) -> None:
    assert retry_after_seconds(header) is None


def test_retry_after_date_without_a_zone_is_read_as_utc() -> None:
    # RFC 5322's "-0000" parses to a naive datetime; subtracting it from an aware one used to raise.
    later = (datetime.now(UTC) + timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S -0000")
    assert 100 < (retry_after_seconds(later) or 0) <= 120


def test_http_failure_names_the_host_but_not_the_path_or_query_of_a_private_feed(
    http: httpx.Client, feed_server: FeedServer
) -> None:
    url = feed_server.serve("/ical/private-s3cr3t/basic.ics", Answer(b"gone", 404))

    with pytest.raises(PermanentError) as caught:
        download(http, url + "?key=t0ken", io.BytesIO(), max_bytes=10_000, timeout_seconds=5)

    message = str(caught.value)
    assert message.startswith("HTTP 404 from http://127.0.0.1:")
    assert "s3cr3t" not in message and "t0ken" not in message


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
        fetch_provider(load_registry(Settings()).configured("fever"), engine=engine)

    assert stored_rows(engine) == before


def test_fetch_of_body_that_is_not_the_gzip_it_claims_fails_as_a_bad_feed(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    fetch_fever(monkeypatch, engine, feed_server, fever_body("response_1.xml"))
    before = stored_rows(engine)
    broken = Answer(b"this is not gzip at all", headers={"Content-Encoding": "gzip"})

    with pytest.raises(FeedError, match="cannot be decoded"):
        fetch_fever(monkeypatch, engine, feed_server, broken)

    assert stored_rows(engine) == before


def test_fetch_caught_in_a_redirect_loop_fails_permanently(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer
) -> None:
    loop = Answer(b"", 302, {"Location": "/api/events"})

    with pytest.raises(PermanentError, match="too many redirects") as caught:
        fetch_fever(monkeypatch, engine, feed_server, loop)

    assert not isinstance(caught.value, TransientError)
    assert stored_rows(engine) == {}


FEED = fever_body("response_1.xml")


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),
        ("gzip, deflate", lambda data: zlib.compress(gzip.compress(data))),
        ("GZIP, identity", gzip.compress),
        ("gzip", lambda data: gzip.compress(data[:500]) + gzip.compress(data[500:])),
    ],
    ids=["gzip", "x-gzip", "deflate", "raw-deflate", "gzip-then-deflate", "case", "two-members"],
)
def test_download_decodes_each_content_coding_it_announces(
    encoding: str, encode: Callable[[bytes], bytes], http: httpx.Client, fault_feed: FaultFeed
) -> None:
    url = fault_feed.serve("/feed", Reply(encode(FEED), headers={"Content-Encoding": encoding}))
    sink = io.BytesIO()

    written = download(http, url, sink, max_bytes=100_000, timeout_seconds=5)

    assert (written, sink.getvalue()) == (len(FEED), FEED)


def test_download_asks_only_for_codings_it_can_decode_within_the_cap(
    http: httpx.Client, fault_feed: FaultFeed
) -> None:
    url = fault_feed.serve("/feed", FEED)

    download(http, url, io.BytesIO(), max_bytes=100_000, timeout_seconds=5)

    assert fault_feed.requests[-1].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br", "x-custom"])
def test_download_refuses_a_content_coding_it_cannot_bound(
    encoding: str, http: httpx.Client, fault_feed: FaultFeed
) -> None:
    url = fault_feed.serve("/feed", Reply(FEED, headers={"Content-Encoding": encoding}))

    with pytest.raises(FeedError, match="unsupported Content-Encoding"):
        download(http, url, io.BytesIO(), max_bytes=100_000, timeout_seconds=5)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", lambda: gzip_of_zeros(64 << 20)),
        ("gzip, gzip", lambda: gzip_of_zeros(64 << 20, layers=2)),
        ("deflate", lambda: deflate_of_zeros(64 << 20)),
        ("deflate", lambda: deflate_of_zeros(64 << 20, raw=True)),
    ],
    ids=["gzip", "gzip-gzip", "deflate", "raw-deflate"],
)
def test_download_stops_a_compression_bomb_at_the_cap_decoding_it_in_small_steps(
    encoding: str, body: Callable[[], bytes], http: httpx.Client, fault_feed: FaultFeed
) -> None:
    bomb = body()
    assert len(bomb) < 300_000
    url = fault_feed.serve("/feed", Reply(bomb, headers={"Content-Encoding": encoding}))
    sink = io.BytesIO()

    tracemalloc.start()
    try:
        with pytest.raises(FeedError, match="over the 1048576-byte cap"):
            download(http, url, sink, max_bytes=1 << 20, timeout_seconds=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Decoded a step at a time: no step holds the 64 MiB the bomb expands to.
    assert len(sink.getvalue()) <= 1 << 20
    assert peak < 8 << 20


def test_download_refuses_more_stacked_codings_than_it_decodes(
    http: httpx.Client, fault_feed: FaultFeed
) -> None:
    body = FEED
    for _ in range(5):
        body = gzip.compress(body)
    url = fault_feed.serve(
        "/feed", Reply(body, headers={"Content-Encoding": "gzip, " * 4 + "gzip"})
    )

    with pytest.raises(FeedError, match="more than 4 content codings"):
        download(http, url, io.BytesIO(), max_bytes=100_000, timeout_seconds=5)


def test_download_refuses_a_gzip_body_that_stops_before_its_end(
    http: httpx.Client, fault_feed: FaultFeed
) -> None:
    cut = gzip.compress(FEED)[:-20]
    url = fault_feed.serve("/feed", Reply(cut, headers={"Content-Encoding": "gzip"}))

    with pytest.raises(FeedError, match=r"cannot be decoded: .*ends before"):
        download(http, url, io.BytesIO(), max_bytes=100_000, timeout_seconds=5)
