"""Streaming HTTP download with a size cap, a deadline and transient/permanent classification."""

import contextlib
import socket
import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO, Any

import httpx

from core.errors import FeedError, PermanentError, TransientError
from core.feeds.decoding import ACCEPT_ENCODING, BoundedDecoder


def retry_after_seconds(value: str | None) -> float | None:
    """Read a Retry-After header: delta-seconds or an HTTP date. Anything else is no hint at all,
    never an error: a retryable answer stays retryable whatever the header says."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about the zone (RFC 5322)
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _where(url: httpx.URL) -> str:
    """Scheme and host only: paths and queries of private feeds carry secrets, and the provider's
    name already says which feed it was."""
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    reason = f"HTTP {status} from {_where(response.url)}"
    if status in (408, 429) or status >= 500:
        raise TransientError(
            reason, retry_after=retry_after_seconds(response.headers.get("Retry-After"))
        )
    raise PermanentError(reason)


class _Watchdog:
    """Enforces the whole-download deadline: httpx's timeouts bound each read, not the download,
    so a server trickling a byte at a time would hold the worker forever. At the deadline the
    connection's socket is shut down, which wakes a read blocked in any phase."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's `trace` extension: learn each new connection's socket as it opens."""
        if event == "connection.connect_tcp.complete":
            self.watch(info.get("return_value"))

    def watch(self, stream: Any) -> None:
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # Already closed: nothing left to wake.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def download(
    client: httpx.Client, url: str, sink: IO[bytes], *, max_bytes: int, timeout_seconds: float
) -> int:
    """Stream `url` into `sink`; return the number of bytes written."""
    too_slow = f"download took longer than {timeout_seconds:g}s"
    with _Watchdog(timeout_seconds) as watchdog:
        try:
            total = _stream(client, url, sink, max_bytes, timeout_seconds, watchdog)
        except httpx.HTTPError as exc:
            if watchdog.expired:
                raise TransientError(too_slow) from exc
            raise _classify(exc) from exc
        except httpx.InvalidURL as exc:
            raise PermanentError(f"invalid URL: {exc}") from exc
        # A body delimited by closing the connection reads a cut-off as its end: not a whole feed.
        if watchdog.expired:
            raise TransientError(too_slow)
        return total


def _stream(
    client: httpx.Client,
    url: str,
    sink: IO[bytes],
    max_bytes: int,
    timeout_seconds: float,
    watchdog: _Watchdog,
) -> int:
    with client.stream(
        "GET",
        url,
        headers={"Accept-Encoding": ACCEPT_ENCODING},
        timeout=timeout_seconds,
        extensions={"trace": watchdog.trace},
    ) as response:
        # A pooled connection opened no new socket: watch the one the response came on.
        watchdog.watch(response.extensions.get("network_stream"))
        _check_status(response)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise FeedError(f"feed is {declared} bytes, over the {max_bytes}-byte cap")
        decoder = BoundedDecoder(response.headers.get("Content-Encoding"), max_bytes)
        received = total = 0
        # Raw bytes, decoded here a bounded step at a time: httpx's decoders would expand a whole
        # chunk at once. No chunk size: each read is handed on as it arrives.
        for raw in response.iter_raw():
            received += len(raw)
            if received > max_bytes:
                raise FeedError(f"feed is over the {max_bytes}-byte cap")
            for piece in decoder.decode(raw):
                total += len(piece)
                if total > max_bytes:
                    raise FeedError(f"feed is over the {max_bytes}-byte cap")
                if watchdog.expired:
                    raise TransientError(f"download took longer than {timeout_seconds:g}s")
                sink.write(piece)
        decoder.finish()
        return total


def _classify(exc: httpx.HTTPError) -> Exception:
    """Which httpx failures are worth retrying. Order matters: the subclasses come first."""
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"timed out: {type(exc).__name__}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return PermanentError(f"unsupported URL scheme: {exc}")
    if isinstance(exc, httpx.TransportError):
        return TransientError(f"connection failed: {exc}")
    if isinstance(exc, httpx.TooManyRedirects):
        return PermanentError(f"too many redirects: {exc}")
    return PermanentError(f"HTTP request failed: {type(exc).__name__}: {exc}")
