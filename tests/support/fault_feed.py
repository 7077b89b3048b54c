"""A provider that misbehaves on purpose: a raw-socket HTTP/1.1 server on 127.0.0.1 whose answers
are scripted per path, down to the byte (wrong framing, drips, hangs, resets, bombs).

http.server cannot send a body shorter than its Content-Length, reset a connection or stall
mid-body; this writes the socket itself. Every answer closes its connection, so no fault leaks
into the next request.
"""

import contextlib
import gzip
import socket
import struct
import threading
import zlib
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

READ_CHUNK = 1 << 20


@dataclass
class Reply:
    """One scripted answer.

    `length` is the Content-Length sent: "auto" for the body's true size, None for none (the body
    then ends when the connection closes), or any number, true or not. `send` cuts the body after
    that many bytes; `then` says how the answer ends: a clean close, a reset (RST), or a hang until
    the server stops. `drip` sends the body a byte at a time, that many seconds apart; `delay`
    waits before the status line.
    """

    body: bytes | Path = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    length: int | Literal["auto"] | None = "auto"
    send: int | None = None
    then: Literal["close", "reset", "hang"] = "close"
    drip: float = 0.0
    delay: float = 0.0

    def size(self) -> int:
        return self.body.stat().st_size if isinstance(self.body, Path) else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.body, bytes):
            yield self.body
            return
        with self.body.open("rb") as source:
            while chunk := source.read(READ_CHUNK):
                yield chunk


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]


class FaultFeed:
    """Serves `Reply`s queued per path; the last reply of a path repeats once the others are used."""

    def __init__(self) -> None:
        self.replies: dict[str, deque[Reply]] = defaultdict(deque)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> "FaultFeed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def serve(self, path: str, *replies: Reply | bytes) -> str:
        """Queue replies for `path` (replacing earlier ones); return its URL."""
        with self._lock:
            self.replies[path] = deque(r if isinstance(r, Reply) else Reply(r) for r in replies)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}{path}"

    def _next(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self.replies.get(request.path)
            if not queue:
                return Reply(b"not found", status=404)
            return queue.popleft() if len(queue) > 1 else queue[0]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            request = _read_request(connection)
            if request is None:
                return
            reply = self._next(request)
            if reply.delay and self._stop.wait(reply.delay):
                return
            connection.sendall(_head(reply))
            if request.method != "HEAD":
                self._send_body(connection, reply)
            if reply.then == "hang":
                self._stop.wait()
            elif reply.then == "reset":
                # A zero linger makes close() send RST instead of FIN.
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _send_body(self, connection: socket.socket, reply: Reply) -> None:
        left = reply.size() if reply.send is None else reply.send
        for chunk in reply.chunks():
            piece = chunk[:left]
            left -= len(piece)
            if reply.drip:
                for byte in piece:
                    if self._stop.wait(reply.drip):
                        return
                    connection.sendall(bytes([byte]))
            else:
                connection.sendall(piece)
            if left <= 0:
                return


def _read_request(connection: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target, _ = head[0].split(" ", 2)
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers)


def _head(reply: Reply) -> bytes:
    headers = {"Content-Type": "application/xml", "Connection": "close", **reply.headers}
    length = reply.size() if reply.length == "auto" else reply.length
    if length is not None:
        headers["Content-Length"] = str(length)
    lines = [f"HTTP/1.1 {reply.status} Fault", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --- bodies that attack the decoder ---------------------------------------------------------------


def _zeros_deflated(size: int, wbits: int) -> bytes:
    """`size` zero bytes (a multiple of 1 MiB) deflated in the container `wbits` names, without
    compressing them all: after a full flush each 1 MiB block deflates to the same bytes, so the
    stream is its header, one block repeated, and a trailer checksummed here."""
    assert size % READ_CHUNK == 0
    block = bytes(READ_CHUNK)
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    ending = compressor.flush(zlib.Z_FINISH)
    crc, adler = 0, 1
    for _ in range(size // READ_CHUNK):
        crc, adler = zlib.crc32(block, crc), zlib.adler32(block, adler)
    if wbits > zlib.MAX_WBITS:  # gzip: CRC-32 and length, little-endian
        ending = ending[:-8] + struct.pack("<II", crc, size & 0xFFFFFFFF)
    elif wbits > 0:  # zlib: Adler-32, big-endian
        ending = ending[:-4] + struct.pack(">I", adler)
    return first + repeated * (size // READ_CHUNK - 1) + ending


def gzip_of_zeros(size: int, *, layers: int = 1) -> bytes:
    """`size` zero bytes gzipped `layers` times: a bomb that never exists decoded here."""
    body = _zeros_deflated(size, 16 + zlib.MAX_WBITS)
    for _ in range(layers - 1):
        body = gzip.compress(body, 9)
    return body


def deflate_of_zeros(size: int, *, raw: bool = False) -> bytes:
    """`size` zero bytes deflated, zlib-wrapped (HTTP's `deflate`) or raw (what some servers send)."""
    return _zeros_deflated(size, -zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
