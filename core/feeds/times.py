"""Wall-clock time, the form every provider gives its events in."""

from datetime import datetime
from zoneinfo import ZoneInfo


def wall_clock(value: datetime, zone: ZoneInfo) -> datetime:
    """The naive local time in `zone` of an aware datetime; a naive one is already wall-clock."""
    return value.astimezone(zone).replace(tzinfo=None) if value.tzinfo else value
