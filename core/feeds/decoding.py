"""Content-Encoding decoded a bounded step at a time, with the size cap on every step's output.

httpx decodes a whole raw chunk in one call, so a 2 kB `gzip, gzip` body becomes 1 GiB before
any cap can look at it. Here each layer hands on at most STEP bytes per call to zlib, and every
layer's output counts against the cap.
"""

import zlib
from collections.abc import Iterator

from core.errors import FeedError

# What Accept-Encoding names: only codings decoded here, with the cap applied as they decode.
ACCEPT_ENCODING = "gzip, deflate"
MAX_CODINGS = 4
STEP = 64 * 1024
_GZIP = 16 + zlib.MAX_WBITS


def _over_cap(max_bytes: int) -> FeedError:
    return FeedError(f"feed is over the {max_bytes}-byte cap once decoded")


class _Layer:
    """One coding, gzip (any number of members) or deflate (zlib-wrapped or, as some servers
    send it, raw)."""

    def __init__(self, coding: str, max_bytes: int) -> None:
        self.coding = coding
        self.max_bytes = max_bytes
        self.produced = 0
        self.fed = False
        # Input read before any output, replayed if deflate turns out to be raw deflate.
        self._head: bytes | None = b"" if coding == "deflate" else None
        self._inflater = self._new()

    def _new(self, wbits: int | None = None) -> "zlib._Decompress":
        return zlib.decompressobj(wbits or (_GZIP if self.coding == "gzip" else zlib.MAX_WBITS))

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded form of `data`, in pieces of at most STEP bytes."""
        self.fed = self.fed or bool(data)
        while True:
            try:
                piece = self._inflater.decompress(data, STEP)
            except zlib.error as exc:
                if self._head is None:
                    raise FeedError(f"body cannot be decoded: {self.coding}: {exc}") from exc
                data, self._head = self._head + data, None
                self._inflater = self._new(-zlib.MAX_WBITS)
                continue
            if self._head is not None:
                self._head = self._head + data if not piece and len(self._head) < STEP else None
            self.produced += len(piece)
            if self.produced > self.max_bytes:
                raise _over_cap(self.max_bytes)
            if piece:
                yield piece
            data = self._inflater.unconsumed_tail
            if self._inflater.eof:
                data = self._after_end()
                if not data:
                    return
            # A full step may leave output pending inside zlib even when all input is consumed.
            elif not data and len(piece) < STEP:
                return

    def _after_end(self) -> bytes:
        rest = self._inflater.unused_data
        if self.coding == "gzip":
            rest = rest.lstrip(b"\0")  # gzip allows zero padding after the last member
            if rest:
                self._inflater = self._new()
            return rest
        if rest:
            raise FeedError(
                f"body cannot be decoded: data after the end of its {self.coding} stream"
            )
        return b""

    def finish(self) -> None:
        if self.fed and not self._inflater.eof:
            raise FeedError(
                f"body cannot be decoded: its {self.coding} stream ends before it is complete"
            )


class BoundedDecoder:
    """Decodes a body encoded with the codings of its Content-Encoding header, in order."""

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
        codings = ["gzip" if c == "x-gzip" else c for c in codings if c and c != "identity"]
        unknown = sorted({c for c in codings if c not in ("gzip", "deflate")})
        if unknown:
            raise FeedError(f"unsupported Content-Encoding {', '.join(unknown)}")
        if len(codings) > MAX_CODINGS:
            raise FeedError(f"more than {MAX_CODINGS} content codings: {content_encoding}")
        # Applied in the order listed, so removed last first.
        self._layers = [_Layer(coding, max_bytes) for coding in reversed(codings)]

    def decode(self, data: bytes) -> Iterator[bytes]:
        yield from self._through(data, 0)

    def _through(self, data: bytes, index: int) -> Iterator[bytes]:
        if index == len(self._layers):
            yield data
            return
        for piece in self._layers[index].decode(data):
            yield from self._through(piece, index + 1)

    def finish(self) -> None:
        """Raise FeedError when the body ended inside a compressed stream."""
        for layer in self._layers:
            layer.finish()
