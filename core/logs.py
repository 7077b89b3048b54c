"""Logging: one line per thing worth knowing, as text or JSON lines (MARQUEE_LOG_FORMAT=json)."""

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from core.settings import Settings

# Credentials in URLs (user:password@host) never reach a log line.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@", re.I)
# Record attributes that are not extras; uvicorn adds `color_message`, a copy with ANSI codes.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


def redact(text: str) -> str:
    return _URL_CREDENTIALS.sub(r"\g<scheme>***:***@", text)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        return redact(f"{line} {extras}" if extras else line)


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


def configure_logging(settings: Settings) -> None:
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
