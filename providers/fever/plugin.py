"""The Fever partner feed as a Marquee provider plugin."""

from collections.abc import Iterator
from typing import IO

from pydantic import Field

from marquee import ParseResult, Provider, ProviderSettings, hookimpl
from providers.fever.parser import EVENTS_PER_BASE, ZONES_PER_EVENT, Limits, parse_feed

DEFAULT_URL = "https://provider.code-challenge.feverup.com/api/events"


class FeverSettings(ProviderSettings):
    url: str | None = Field(default=DEFAULT_URL, description="The partner feed's address.")
    interval_seconds: int = Field(default=60, ge=10, le=86_400, description="Fetch period.")
    max_events_per_base: int = Field(
        default=EVENTS_PER_BASE,
        ge=1,
        description="Events of one base event beyond this many are skipped, each with a reason.",
    )
    max_zones_per_event: int = Field(
        default=ZONES_PER_EVENT,
        ge=1,
        description="An event with more zones than this is skipped with a reason.",
    )


class FeverProvider(Provider):
    name = "fever"
    title = "Fever partner feed (XML)"
    settings_class = FeverSettings

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        assert isinstance(settings, FeverSettings)
        limits = Limits(
            events_per_base=settings.max_events_per_base,
            zones_per_event=settings.max_zones_per_event,
        )
        return parse_feed(source, limits=limits)


@hookimpl
def register_providers() -> list[Provider]:
    return [FeverProvider()]
