"""From a provider's ParsedEvent to the row the common upsert stores: ids, local display fields
and UTC instants for searching."""

import hashlib
import math
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.feeds.times import wall_clock
from core.plugins.contract import ParsedEvent

# Fixed forever: changing it would change every event's public id.
EVENT_NAMESPACE = uuid.UUID("6f1f6b9e-3c1a-5d7e-9a51-6d61727175ee")
# The width of events.external_id (core/store/models.py); longer keys are stored compacted.
EXTERNAL_ID_MAX = 255
_KEPT_PREFIX = EXTERNAL_ID_MAX - 1 - 64  # prefix + "#" + sha256 hex


_NAMESPACE_SHA1 = hashlib.sha1(EVENT_NAMESPACE.bytes)


def event_uuid(provider: str, key: str) -> uuid.UUID:
    """The public id of an event: the same for the same (provider, key) on any machine, forever.

    uuid.uuid5(EVENT_NAMESPACE, f"{provider}:{key}"), with the namespace hashed once."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update(f"{provider}:{key}".encode())
    return uuid.UUID(bytes=digest.digest()[:16], version=5)


def external_id(key: str) -> str:
    """The stored form of a feed key: the key itself, or, when it is too long for the column, a
    readable prefix plus the SHA-256 of the whole key (distinct keys stay distinct)."""
    if len(key) <= EXTERNAL_ID_MAX:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[:_KEPT_PREFIX]}#{digest}"


def _instant(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _text(value: object, name: str) -> str:
    """`value` as text a database will store: PostgreSQL refuses NUL and unpaired surrogates."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} is not valid Unicode text") from exc
    return value


def _price(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be a number, not {type(value).__name__}") from exc
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite, non-negative number")
    return number + 0.0  # -0.0 + 0.0 is 0.0: a price has no sign


def _ends_before_start(start: datetime, end: datetime, zone: ZoneInfo) -> bool:
    # Compared as the feed gave them: an aware pair as instants, otherwise as wall-clock times,
    # so a time that does not exist locally (a DST gap) cannot turn a valid event around.
    if start.tzinfo and end.tzinfo:
        return end < start
    return wall_clock(end, zone) < wall_clock(start, zone)


def _times(event: ParsedEvent, zone: ZoneInfo) -> dict[str, Any]:
    start, end = event.start, event.end
    if isinstance(start, datetime):
        if end is not None and not isinstance(end, datetime):
            raise ValueError("start is a date-time but end is a date")
        if end is not None and _ends_before_start(start, end, zone):
            raise ValueError("event ends before it starts")
        start = wall_clock(start, zone)
        end = wall_clock(end, zone) if end is not None else None
        starts_at = _instant(start, zone)
        # Across a DST gap the end can map to an earlier instant than the start: clamp it.
        ends_at = max(_instant(end, zone), starts_at) if end is not None else starts_at
        return {
            "start_date": start.date(),
            "start_time": start.time(),
            "end_date": end.date() if end else None,
            "end_time": end.time() if end else None,
            "starts_at": starts_at,
            "ends_at": ends_at,
        }
    if isinstance(start, date):
        if end is not None and (isinstance(end, datetime) or not isinstance(end, date)):
            raise ValueError("start is a date but end is not")
        last_day = end or start
        if last_day < start:
            raise ValueError("event ends before it starts")
        return {
            "start_date": start,
            "start_time": None,
            "end_date": last_day,
            "end_time": None,
            "starts_at": _instant(datetime.combine(start, time()), zone),
            "ends_at": _instant(datetime.combine(last_day + timedelta(days=1), time()), zone),
        }
    raise ValueError("start must be a date or a date-time")


def normalise(provider: str, zone: ZoneInfo, event: ParsedEvent) -> dict[str, Any]:
    """Return the stored columns for `event`; raise ValueError when it cannot be served."""
    key = _text(event.key, "key")
    if not key:
        raise ValueError("event has no key")
    title = _text(event.title, "title").strip()
    if not title:
        raise ValueError("event has no title")
    min_price, max_price = (
        _price(event.min_price, "min_price"),
        _price(event.max_price, "max_price"),
    )
    if (min_price is None) != (max_price is None):
        raise ValueError("min_price and max_price go together")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise ValueError("min_price is above max_price")
    try:
        times = _times(event, zone)
    except OverflowError as exc:
        raise ValueError("date is out of the supported range") from exc

    return {
        "id": event_uuid(provider, key),
        "provider": provider,
        "external_id": external_id(key),
        "title": title,
        **times,
        "min_price": min_price,
        "max_price": max_price,
        "on_sale": bool(event.on_sale),
    }
