"""Logging: one line per thing worth knowing, as text or JSON lines (MARQUEE_LOG_FORMAT=json)."""

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from core.settings import LogSettings

# A URL in free text: it ends at whitespace, a quote or an angle bracket (as in JSON or HTML).
_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<rest>[^\s\"'<>]+)", re.I)
# Credentials (user:password@host) and query values (?token=…) never reach a log line.
_CREDENTIALS = re.compile(r"^[^/?#@\s:]*:[^/?#\s]*@")  # the user may be empty: redis://:pw@host
_QUERY_VALUE = re.compile(r"=[^&;]+")
MASK = "***"
# Record attributes that are not extras; uvicorn adds `color_message`, a copy with ANSI codes.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


def redact(text: str) -> str:
    """`text` with every URL's password and query values masked (`?token=***&page=***`)."""
    return _URL.sub(_redact_url, text)


def _redact_url(match: re.Match[str]) -> str:
    rest = match["rest"]
    # The password may itself hold "@": the host starts after the last one before the path.
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i != -1), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    if _CREDENTIALS.match(authority):
        authority = f"{MASK}:{MASK}@{authority.rsplit('@', 1)[1]}"
    path, mark, query = tail.partition("?")
    if mark:
        query, hash_mark, fragment = query.partition("#")
        tail = f"{path}?{_QUERY_VALUE.sub(f'={MASK}', query)}{hash_mark}{fragment}"
    return f"{match['scheme']}{authority}{tail}"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        return redact(f"{line} {extras}" if extras else line)


def json_line(level: str, logger: str, message: str, **fields: Any) -> str:
    """One JSON log line, shaped as JsonFormatter shapes a record, for output outside logging."""
    record = logging.makeLogRecord({"levelname": level, "name": logger, "msg": message, **fields})
    return JsonFormatter().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


def configure_logging(settings: LogSettings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.MARQUEE_LOG_FORMAT == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.MARQUEE_LOG_LEVEL)
    # httpx logs every request URL at INFO, query string (where tokens live) included.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # alembic narrates every schema check ("Context impl …") at INFO.
    logging.getLogger("alembic").setLevel(logging.WARNING)
