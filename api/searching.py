"""The read path of one API process: the data version, the response cache, deadlines, streaming.

Database work runs in worker threads behind a capacity limiter the size of the read pool, so no
thread ever waits for a connection, and each call is cut off at DATABASE_CONNECT_TIMEOUT_SECONDS.
The event loop itself only parses, looks up the cache and renders.
"""

import asyncio
import hashlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from api.cache import Entry, ResponseCache
from core.settings import Settings
from core.store.reader import Guard, SearchKey, SearchReader, StoreUnavailable
from core.store.search import PAGE_HEAD, PAGE_TAIL, render_event, render_events, render_page

log = logging.getLogger("api")

JSON = "application/json"
HEAD_REQUEST = "marquee.head"  # scope key set by api.head.HeadAsGet
PARSED_QUERIES = 4096


def etag_of(version: int, key: SearchKey) -> str:
    """Same data version and same normalised search: same bytes, on every replica."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).hexdigest()
    return f'"{version:x}-{digest}"'


def _matches(if_none_match: str, etag: str) -> bool:
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


class SearchService:
    def __init__(self, reader: SearchReader, settings: Settings) -> None:
        self.reader = reader
        self.timeout = settings.DATABASE_CONNECT_TIMEOUT_SECONDS
        self.interval = settings.MARQUEE_DATA_VERSION_CHECK_SECONDS
        self.cache = ResponseCache(
            max_entries=settings.MARQUEE_SEARCH_CACHE_ENTRIES,
            max_bytes=settings.MARQUEE_SEARCH_CACHE_BYTES,
        )
        # A shared cache may keep an answer no longer than this process would.
        self.cache_control = f"public, max-age={math.floor(self.interval)}"
        self._version, self._read_at = 0, -math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._pending: asyncio.Future[int] | None = None
        # Query strings already parsed into their search: parsing costs more than the answer.
        self.parsed: dict[bytes, SearchKey] = {}

    def remember(self, query_string: bytes, key: SearchKey) -> None:
        if len(self.parsed) >= PARSED_QUERIES:
            self.parsed.clear()
        self.parsed[query_string] = key

    def close(self) -> None:
        self.reader.close()

    # --- database calls, bounded ----------------------------------------------------------------

    def _bind_loop(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._limiter is None:
            # Loop-bound objects are remade if the app moves to another loop (as tests do).
            self._loop, self._pending = loop, None
            self._limiter = anyio.CapacityLimiter(self.reader.capacity)
        return self._limiter

    async def call(self, function: Callable[..., Any], /, *args: Any) -> Any:
        limiter = self._bind_loop()
        guard = Guard()
        with anyio.move_on_after(self.timeout) as scope:
            # Abandoned on the deadline: the guard then cuts the thread's connection, so it ends too.
            return await anyio.to_thread.run_sync(
                partial(function, *args, guard=guard), limiter=limiter, abandon_on_cancel=True
            )
        if scope.cancelled_caught:
            guard.cut()
        raise StoreUnavailable(f"no answer within {self.timeout:g} s")

    # --- the data version -----------------------------------------------------------------------

    async def data_version(self) -> int:
        """The data version as read less than one check interval ago."""
        self._bind_loop()
        age = time.monotonic() - self._read_at
        if age < self.interval:
            # Read ahead, early: under a thousand connections the loop may take a few hundred
            # milliseconds to hand the answer back, and past the interval requests must wait.
            if age >= self.interval / 4 and self._pending is None:
                self._refresh()
            return self._version
        pending = self._pending or self._refresh()
        return await asyncio.shield(pending)

    def _refresh(self) -> "asyncio.Future[int]":
        self._pending = asyncio.ensure_future(self._read_version())
        self._pending.add_done_callback(lambda done: done.cancelled() or done.exception())
        return self._pending

    async def _read_version(self) -> int:
        started = time.monotonic()
        try:
            version = await self.call(self.reader.version)
        finally:
            self._pending = None
        self._version, self._read_at = version, started
        return version

    # --- answers ----------------------------------------------------------------------------------

    def _headers(self, etag: str) -> dict[str, str]:
        return {"etag": etag, "cache-control": self.cache_control}

    async def search(self, request: Request, key: SearchKey) -> Response:
        version = await self.data_version()
        entry = self.cache.get(key, version)
        etag = entry.etag if entry is not None else etag_of(version, key)
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and _matches(if_none_match, etag):
            return Response(status_code=304, headers=self._headers(etag))
        if entry is not None:
            return Response(entry.body, media_type=JSON, headers=self._headers(etag))
        rows = await self.call(self.reader.search, key)
        if len(rows) < self.reader.chunk_rows:
            body = render_page(rows)
            self.cache.put(key, Entry(version, body, etag))
            return Response(body, media_type=JSON, headers=self._headers(etag))
        head = bool(request.scope.get(HEAD_REQUEST))
        return StreamingResponse(
            self._stream(key, rows, head=head), media_type=JSON, headers=self._headers(etag)
        )

    async def _stream(
        self, key: SearchKey, rows: Sequence[tuple[Any, ...]], *, head: bool
    ) -> AsyncIterator[bytes]:
        """A long answer chunk by chunk: each chunk is one statement continuing after the last
        row sent, so no connection is held while the client reads, and memory stays one chunk."""
        yield PAGE_HEAD + render_events(rows)
        if head:
            return
        while len(rows) == self.reader.chunk_rows:
            try:
                rows = await self.call(partial(self.reader.search, key, after=rows[-1][-2:]))
            except StoreUnavailable as exc:
                # The status line is gone: cutting the response short is all that is left to do.
                log.error("database unavailable while streaming GET /search: %s", exc)
                raise
            if rows:
                yield b"," + render_events(rows)
        yield PAGE_TAIL

    async def event(self, event_id: uuid.UUID, providers: Sequence[str]) -> bytes | None:
        row = await self.call(self.reader.event, event_id, providers)
        return render_event(row) if row is not None else None
