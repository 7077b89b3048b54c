"""What a provider is: its settings, a fetch step (I/O) and a parse step (pure).

Plugin authors import these from `marquee`, the public API, never from here.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Annotated, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import Field, field_validator

from core.errors import PermanentError
from core.feeds.download import download
from core.settings import EnvSettings, RetentionDays

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
NAME_RULE = (
    "lower-case letters, digits and underscores, starting with a letter, at most 40 characters"
)


def check_provider_name(name: object) -> str:
    """`name` if it can name a provider (its env prefix, id namespace and `?provider=` value);
    ValueError saying the rule otherwise. The one place the rule and its message live."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"provider name {name!r} must be {NAME_RULE}")
    return name


class ProviderSettings(EnvSettings):
    """Settings every provider has; read from `MARQUEE_<NAME>_<SETTING>` variables (or
    `MARQUEE_<NAME>_<SETTING>_FILE`); an empty value means the default."""

    url: str | None = Field(default=None, description="Where the feed is fetched from.")
    timezone: str = Field(default="UTC", description="IANA zone of the feed's wall-clock times.")
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = Field(
        default=30.0, description="Deadline for one whole download."
    )
    # 256 MiB holds 5,000 events of 500 zones (about 207 MB) with room to spare; the body spools
    # to disk and is parsed as a stream, so the cap costs disk, not memory.
    max_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=256 * 1024 * 1024, description="A body larger than this is refused unread."
    )
    interval_seconds: Annotated[int, Field(ge=10, le=86_400)] = Field(
        default=300, description="How often the scheduler fetches this provider."
    )
    # Retention overrides for this provider; unset means the MARQUEE_RETENTION_* value.
    retention_hide_after_days: RetentionDays = Field(
        default=None, description="Hide events after this many days of inactivity."
    )
    retention_archive_after_days: RetentionDays = Field(
        default=None, description="Archive events after this many days of inactivity."
    )
    retention_purge_after_days: RetentionDays = Field(
        default=None, description="Delete events after this many days of inactivity."
    )

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Madrid)"
            ) from exc
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One searchable event as a provider understands it, before the platform normalises it.

    `start`/`end` are local wall-clock times (naive datetimes) in the provider's time zone, or
    dates for all-day events, in which case `end` is the last day, inclusive.
    """

    key: str
    title: str
    start: datetime | date
    end: datetime | date | None
    on_sale: bool
    min_price: float | None = None
    max_price: float | None = None


@dataclass(frozen=True, slots=True)
class InvalidItem:
    """An item of the feed that could not be read; it is counted and skipped, never fatal."""

    key: str | None
    reason: str


ParseResult = ParsedEvent | InvalidItem


class Provider:
    """A source of events. Subclass it, set `name`, and implement `parse`.

    `fetch` downloads `settings.url` by default; override it for feeds that need more.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    settings_class: ClassVar[type[ProviderSettings]] = ProviderSettings
    secret_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).name  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def load_settings(self) -> ProviderSettings:
        """Read this provider's settings from `MARQUEE_<NAME>_*` (raises pydantic ValidationError)."""
        return self.settings_class(_env_prefix=self.env_prefix)  # type: ignore[call-arg]

    @property
    def env_prefix(self) -> str:
        return f"MARQUEE_{self.name.upper()}_"

    def fetch(self, settings: ProviderSettings, client: httpx.Client, sink: IO[bytes]) -> None:
        """Write the raw feed into `sink`; raise TransientError or PermanentError on failure."""
        if not settings.url:
            raise PermanentError(f"{self.env_prefix}URL is not set")
        download(
            client,
            settings.url,
            sink,
            max_bytes=settings.max_bytes,
            timeout_seconds=settings.timeout_seconds,
        )

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        """Read the raw feed and yield one result per item. Pure: no I/O beyond `source`."""
        raise NotImplementedError
