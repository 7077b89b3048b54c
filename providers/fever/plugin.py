"""The Fever partner feed as a Marquee provider plugin."""

from collections.abc import Iterator
from typing import IO

from pydantic import Field

from marquee import ParseResult, Provider, ProviderSettings, hookimpl
from providers.fever.parser import parse_feed

DEFAULT_URL = "https://provider.code-challenge.feverup.com/api/events"


class FeverSettings(ProviderSettings):
    url: str | None = Field(default=DEFAULT_URL, description="The partner feed's address.")
    interval_seconds: int = Field(default=60, ge=10, le=86_400, description="Fetch period.")


class FeverProvider(Provider):
    name = "fever"
    title = "Fever partner feed (XML)"
    settings_class = FeverSettings

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        return parse_feed(source)


@hookimpl
def register_providers() -> list[Provider]:
    return [FeverProvider()]
