"""Events stored straight through the common normaliser and upsert, without a feed."""

from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from core.ingest.normalise import normalise
from core.plugins.contract import ParsedEvent
from core.store.db import transaction
from core.store.upsert import upsert_events
from core.store.version import bump_data_version


def store(engine: Engine, events: Iterable[ParsedEvent], *, provider: str = "fever") -> None:
    """Upsert `events` as `provider`'s, in UTC, and bump the data version as a fetch does."""
    rows = [normalise(provider, ZoneInfo("UTC"), event) for event in events]
    with transaction(engine) as session:
        upsert_events(session, rows, now=datetime.now(UTC))
        bump_data_version(session=session)


def event(
    key: str,
    start: datetime | date,
    end: datetime | date | None = None,
    *,
    title: str | None = None,
    prices: tuple[float | None, float | None] = (10.0, 20.0),
    on_sale: bool = True,
) -> ParsedEvent:
    return ParsedEvent(key, title or f"Event {key}", start, end, on_sale, *prices)
