"""Marquee's public plugin API: everything a provider plugin imports, and all it should import.

    from marquee import hookimpl, Provider, ProviderSettings, ParsedEvent, InvalidItem, ...

This module and `marquee.testing` (the provider contract kit) are the stable surface; every other
module (`core`, `api`, `providers`) is internal and may change in any release.
"""

from importlib.metadata import PackageNotFoundError, version

from core.errors import ConfigError, FeedError, PermanentError, ProviderError, TransientError
from core.feeds.download import download
from core.feeds.streaming import iterate_pushed
from core.feeds.times import wall_clock
from core.plugins.contract import (
    InvalidItem,
    ParsedEvent,
    ParseResult,
    Provider,
    ProviderSettings,
    check_provider_name,
)
from core.plugins.hookspecs import hookimpl
from core.settings import EnvSettings, comma_list

DISTRIBUTION = "marquee-events"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0.0.0"

__all__ = [
    "DISTRIBUTION",
    "ConfigError",
    "EnvSettings",
    "FeedError",
    "InvalidItem",
    "ParseResult",
    "ParsedEvent",
    "PermanentError",
    "Provider",
    "ProviderError",
    "ProviderSettings",
    "TransientError",
    "__version__",
    "check_provider_name",
    "comma_list",
    "download",
    "hookimpl",
    "iterate_pushed",
    "wall_clock",
]
