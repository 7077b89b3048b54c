"""iCalendar (RFC 5545) feeds as Marquee providers. (Being written.)"""

from core.contract import Provider
from core.hookspecs import hookimpl


@hookimpl
def register_providers() -> list[Provider]:
    return []
