"""Query parameter parsing with messages a client can act on."""

import re
from datetime import UTC, datetime

from api.envelope import ApiError

DATE_TIME_HINT = "an RFC 3339 date-time such as 2017-07-21T17:32:28Z"
# An unencoded "+02:00" in a query string arrives as " 02:00": read it back as the offset it was.
_SPACED_OFFSET = re.compile(r" (\d{2}(?::?\d{2})?)$")


def parse_date_time(name: str, raw: str | None) -> datetime | None:
    """An instant; a value without an offset is read as UTC."""
    if raw is None:
        return None
    text = raw.strip()
    if len(text) < 16 or text[10] not in "Tt ":
        raise ApiError(400, "invalid_parameter", f"{name} must be {DATE_TIME_HINT}, not {raw!r}")
    try:
        clock = _SPACED_OFFSET.sub(r"+\1", text[11:]).replace("z", "Z")
        value = datetime.fromisoformat(text[:10] + "T" + clock)
        # Near year 1 or 9999 an offset can push the instant out of range (OverflowError).
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            400, "invalid_parameter", f"{name} must be {DATE_TIME_HINT}, not {raw!r}"
        ) from None
