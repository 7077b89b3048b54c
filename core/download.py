"""Streaming HTTP download with a size cap, a deadline and transient/permanent classification."""

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import IO

import httpx

from core.errors import FeedError, PermanentError, TransientError

CHUNK_SIZE = 64 * 1024


def retry_after_seconds(value: str | None) -> float | None:
    """Read a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    reason = (
        f"HTTP {status} from {response.url.copy_with(query=None, username=None, password=None)}"
    )
    if status in (408, 429) or status >= 500:
        raise TransientError(
            reason, retry_after=retry_after_seconds(response.headers.get("Retry-After"))
        )
    raise PermanentError(reason)


def download(
    client: httpx.Client, url: str, sink: IO[bytes], *, max_bytes: int, timeout_seconds: float
) -> int:
    """Stream `url` into `sink`; return the number of bytes written."""
    deadline = time.monotonic() + timeout_seconds
    try:
        with client.stream("GET", url, timeout=timeout_seconds) as response:
            _check_status(response)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(f"feed is {declared} bytes, over the {max_bytes}-byte cap")
            total = 0
            # Decoded bytes are counted, so a compressed bomb hits the cap too.
            for chunk in response.iter_bytes(CHUNK_SIZE):
                total += len(chunk)
                if total > max_bytes:
                    raise FeedError(f"feed is over the {max_bytes}-byte cap")
                if time.monotonic() > deadline:
                    raise TransientError(f"download took longer than {timeout_seconds:g}s")
                sink.write(chunk)
            return total
    except httpx.TimeoutException as exc:
        raise TransientError(f"timed out: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"connection failed: {exc}") from exc
    except httpx.InvalidURL as exc:
        raise PermanentError(f"invalid URL: {exc}") from exc
