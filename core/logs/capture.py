"""JSON log mode for a whole process: every line it writes to stdout or stderr is a JSON object.

Libraries print what logging never sees: Celery's banner and shutdown notices (written straight to
file descriptors 1 and 2), argparse's usage errors, a traceback at exit. So the two descriptors are
replaced by pipes that a thread reads line by line: a line that already is a JSON object passes
unchanged, any other becomes one (`"logger": "stdout"` or `"stderr"`). Child processes (Celery's
prefork pool) inherit the pipes, so their lines are wrapped too. Warnings and uncaught exceptions
are logged as records, one JSON line each rather than one per traceback line.
"""

import atexit
import contextlib
import json
import logging
import os
import re
import sys
import threading
from traceback import format_exception
from types import TracebackType

from core.logs import JsonFormatter, json_line, redact

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Written at exit to learn when everything before it has been relayed.
_FLUSHED = b"\x00marquee: relayed\x00"
_WAIT_AT_EXIT_SECONDS = 2.0
_relays: list["_Relay"] = []


def _is_json_object(text: str) -> bool:
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


class _Relay:
    """Replaces file descriptor `fd` by a pipe whose lines reach the original as JSON."""

    def __init__(self, fd: int, name: str, level: str) -> None:
        self.fd, self.name, self.level = fd, name, level
        self.original = os.dup(fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self.read_end = read_end
        self.relayed = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"json-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        pending = b""
        while chunk := os.read(self.read_end, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._relay(line)
        if pending:
            self._relay(pending)
        self.relayed.set()

    def _relay(self, raw: bytes) -> None:
        if raw == _FLUSHED:
            self.relayed.set()
            return
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if not text.strip():
            return
        if not _is_json_object(text):
            text = json_line(self.level, self.name, redact(_ANSI.sub("", text).strip()))
        with contextlib.suppress(OSError):  # the reader went away; nothing is left to tell
            _write_all(self.original, text.encode() + b"\n")

    def close(self) -> None:
        """Wait until what was written so far is relayed, then give `fd` back its original."""
        self.relayed.clear()
        try:
            _write_all(self.fd, _FLUSHED + b"\n")
            self.relayed.wait(_WAIT_AT_EXIT_SECONDS)
        finally:
            os.dup2(self.original, self.fd)


def _report_uncaught(message: str, error: BaseException) -> None:
    # Printed rather than logged: logging may not be configured yet when a command crashes.
    trace = "".join(format_exception(error)).rstrip()
    print(json_line("CRITICAL", "marquee", message, exception=trace), file=sys.stderr, flush=True)


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    _report_uncaught(f"uncaught exception: {kind.__name__}: {error}", error)


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread else "?"
    _report_uncaught(
        f"uncaught exception in thread {thread}: {args.exc_type.__name__}: {args.exc_value}",
        args.exc_value,
    )


def _close_relays() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    while _relays:
        _relays.pop().close()


def enable_json_output() -> None:
    """From now on this process writes only JSON lines to stdout and stderr. Idempotent."""
    if _relays:
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    _relays.extend([_Relay(1, "stdout", "INFO"), _Relay(2, "stderr", "WARNING")])
    atexit.register(_close_relays)
    root = logging.getLogger()
    if not root.handlers:  # until the command configures logging, records are JSON lines too
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
