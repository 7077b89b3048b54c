"""Query parameter parsing with messages a client can act on."""

from datetime import UTC, datetime

from api.envelope import ApiError

DATE_TIME_HINT = "an RFC 3339 date-time such as 2017-07-21T17:32:28Z"


def parse_date_time(name: str, raw: str | None) -> datetime | None:
    """An instant; a value without an offset is read as UTC."""
    if raw is None:
        return None
    text = raw.strip()
    if len(text) < 16 or text[10] not in "Tt ":
        raise ApiError(400, "invalid_parameter", f"{name} must be {DATE_TIME_HINT}, not {raw!r}")
    try:
        value = datetime.fromisoformat(text[:10] + "T" + text[11:].replace("z", "Z"))
    except ValueError:
        raise ApiError(
            400, "invalid_parameter", f"{name} must be {DATE_TIME_HINT}, not {raw!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
