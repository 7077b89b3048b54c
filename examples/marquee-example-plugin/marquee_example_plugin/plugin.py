"""A JSON events feed as a Marquee provider: `{"events": [{id, title, start, end, status, prices}]}`."""

import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from core.contract import InvalidItem, ParsedEvent, ParseResult, Provider, ProviderSettings
from core.errors import FeedError
from core.hookspecs import hookimpl


class ExampleSettings(ProviderSettings):
    url: str | None = Field(default=None, description="Address of the JSON events feed.")


def _date_or_date_time(value: Any) -> Any:
    """ "2026-08-01" is an all-day date; anything longer is a local wall-clock date-time."""
    if isinstance(value, str):
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    return value


When = Annotated[datetime | date, BeforeValidator(_date_or_date_time)]


class Item(BaseModel):
    """One entry of `events`; anything that does not fit is skipped and counted."""

    id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    start: When
    end: When | None = None
    status: Literal["on_sale", "sold_out", "cancelled"] = "on_sale"
    prices: list[float] = Field(default_factory=list)


def _event(raw: Any) -> ParseResult:
    key = str(raw.get("id")) if isinstance(raw, dict) and raw.get("id") else None
    try:
        item = Item.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}" for e in exc.errors()
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
    title = "Example JSON events feed"
    settings_class = ExampleSettings

    def parse(self, settings: ProviderSettings, source: IO[bytes]) -> Iterator[ParseResult]:
        try:
            document = json.load(source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FeedError(f"not a JSON document: {exc}") from exc
        events = document.get("events") if isinstance(document, dict) else None
        if not isinstance(events, list):
            raise FeedError('expected an object with an "events" list')
        for raw in events:
            yield _event(raw)


@hookimpl
def register_providers() -> list[Provider]:
    return [ExampleJsonProvider()]
