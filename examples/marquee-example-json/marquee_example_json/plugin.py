"""Example Json events feed as a Marquee provider.

The feed it reads (replace it with yours): `{"events": [{"id", "title", "start", "end", "status",
"prices"}]}`. `start` and `end` are local wall-clock date-times, or dates for all-day events (`end`
inclusive); `status` is `on_sale` (the default), `sold_out` or `cancelled`; `prices` is optional.
"""

import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import IO, Annotated, Any, Literal

import httpx
from marquee import (
    FeedError,
    InvalidItem,
    ParsedEvent,
    ParseResult,
    Provider,
    ProviderSettings,
    hookimpl,
)
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError


class ExampleJsonSettings(ProviderSettings):
    """Read from MARQUEE_EXAMPLE_JSON_<SETTING>; every field needs a description."""

    url: str | None = Field(default=None, description="Address of the feed.")
    api_key: SecretStr | None = Field(default=None, description="Sent as the X-Api-Key header.")


def _date_or_date_time(value: Any) -> Any:
    """`2026-08-01` is an all-day date; anything longer is a local wall-clock date-time."""
    if isinstance(value, str):
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    return value


When = Annotated[datetime | date, BeforeValidator(_date_or_date_time)]


class Item(BaseModel):
    """One entry of `events`; anything that does not fit is skipped and counted."""

    model_config = ConfigDict(coerce_numbers_to_str=True)  # feeds often give ids as numbers

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    start: When
    end: When | None = None
    status: Literal["on_sale", "sold_out", "cancelled"] = "on_sale"
    prices: list[float] = Field(default_factory=list)


def _result(raw: Any) -> ParseResult:
    key = str(raw["id"]) if isinstance(raw, dict) and raw.get("id") not in (None, "") else None
    try:
        item = Item.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'item'}: {error['msg']}"
            for error in exc.errors()
        )
        return InvalidItem(key=key, reason=problems)
    return ParsedEvent(
        key=item.id,
        title=item.title,
        start=item.start,
        end=item.end,
        on_sale=item.status == "on_sale",
        min_price=min(item.prices) if item.prices else None,
        max_price=max(item.prices) if item.prices else None,
    )


class ExampleJsonProvider(Provider):
    name = "example_json"
    title = "Example Json events feed"
    settings_class = ExampleJsonSettings

    def fetch(self, settings: ProviderSettings, client: httpx.Client, sink: IO[bytes]) -> None:
        """The inherited download of `url` (size cap, deadline, retry classes), with the key."""
        if isinstance(settings, ExampleJsonSettings) and settings.api_key is not None:
            client.headers["X-Api-Key"] = settings.api_key.get_secret_value()
        super().fetch(settings, client, sink)

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        try:
            document = json.load(source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FeedError(f"not a JSON document: {exc}") from exc
        events = document.get("events") if isinstance(document, dict) else None
        if not isinstance(events, list):
            raise FeedError('expected an object with an "events" list')
        for raw in events:
            yield _result(raw)


@hookimpl
def register_providers() -> list[Provider]:
    return [ExampleJsonProvider()]
