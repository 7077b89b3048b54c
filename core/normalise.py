"""From a provider's ParsedEvent to the row the common upsert stores: ids, local display fields
and UTC instants for searching."""

import math
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.contract import ParsedEvent

# Fixed forever: changing it would change every event's public id.
EVENT_NAMESPACE = uuid.UUID("6f1f6b9e-3c1a-5d7e-9a51-6d61727175ee")


def event_uuid(provider: str, key: str) -> uuid.UUID:
    """The public id of an event: the same for the same (provider, key) on any machine, forever."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{provider}:{key}")


def _wall_clock(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(zone).replace(tzinfo=None) if value.tzinfo else value


def _instant(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _price(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative number")
    return value


def normalise(provider: str, zone: ZoneInfo, event: ParsedEvent) -> dict[str, Any]:
    """Return the stored columns for `event`; raise ValueError when it cannot be served."""
    if not event.key:
        raise ValueError("event has no key")
    title = (event.title or "").strip()
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

    start, end = event.start, event.end
    if isinstance(start, datetime):
        if end is not None and not isinstance(end, datetime):
            raise ValueError("start is a date-time but end is a date")
        start = _wall_clock(start, zone)
        end = _wall_clock(end, zone) if end is not None else None
        starts_at = _instant(start, zone)
        ends_at = _instant(end, zone) if end is not None else starts_at
        display = {
            "start_date": start.date(),
            "start_time": start.time(),
            "end_date": end.date() if end else None,
            "end_time": end.time() if end else None,
        }
    elif isinstance(start, date):
        if end is not None and (isinstance(end, datetime) or not isinstance(end, date)):
            raise ValueError("start is a date but end is not")
        last_day = end or start
        starts_at = _instant(datetime.combine(start, time()), zone)
        ends_at = _instant(datetime.combine(last_day + timedelta(days=1), time()), zone)
        display = {"start_date": start, "start_time": None, "end_date": last_day, "end_time": None}
    else:
        raise ValueError("start must be a date or a date-time")
    if ends_at < starts_at:
        raise ValueError("event ends before it starts")

    return {
        "id": event_uuid(provider, event.key),
        "provider": provider,
        "external_id": event.key,
        "title": title,
        **display,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "min_price": min_price,
        "max_price": max_price,
        "on_sale": bool(event.on_sale),
    }
