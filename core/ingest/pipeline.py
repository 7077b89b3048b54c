"""One fetch of one provider: download, parse, normalise and upsert in one transaction.

`marquee fetch`, the Celery task and the embedded scheduler all call `fetch_provider`.
"""

import logging
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import httpx
from sqlalchemy.engine import Engine

from core.errors import FeedError, MarqueeError
from core.ingest.normalise import event_uuid, normalise
from core.plugins.contract import InvalidItem, ParsedEvent, ParseResult
from core.plugins.registry import ConfiguredProvider
from core.store.db import transaction
from core.store.models import utcnow
from core.store.presence import record_presence
from core.store.upsert import EventWriter
from core.store.version import bump_data_version

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY_BYTES = 4 * 1024 * 1024
MAX_REPORTED_SKIPS = 20
# Reasons reach logs and /providers: a short excerpt of the feed, never a megabyte of it.
MAX_REASON_CHARS = 300
DUPLICATE = "duplicate of an earlier event with the same key in this feed; the first is kept"
USER_AGENT = "Marquee/0.1 (+event aggregator)"


@dataclass(slots=True)
class FetchReport:
    provider: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skip_reasons: list[str] = field(default_factory=list)
    # Later copies of an event already in this feed; counted in `skipped` too (not stored).
    duplicates: int = 0
    # Stored events this fetch did not see, that were in the provider's previous successful one.
    absent: int = 0

    @property
    def seen(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _batches(
    entry: ConfiguredProvider,
    results: Iterable[ParseResult],
    size: int,
    report: FetchReport,
    unreadable: list[Any],
) -> Iterator[list[dict[str, Any]]]:
    """Batches of normalised rows; the ids of keyed items that could not be read go to `unreadable`."""
    zone = entry.settings.zone
    batch: list[dict[str, Any]] = []
    for result in results:
        # Unreadable items are flushed too: a feed of nothing but bad items stays bounded.
        if len(unreadable) >= size:
            yield batch
            batch = []
        if isinstance(result, InvalidItem):
            _skip(report, result.key, result.reason)
            if isinstance(result.key, str) and result.key:
                unreadable.append(event_uuid(entry.name, result.key))
            continue
        if not isinstance(result, ParsedEvent):
            _skip(report, None, f"provider yielded a {type(result).__name__}, not a ParsedEvent")
            continue
        try:
            batch.append(normalise(entry.name, zone, result))
        # One ill-typed item from a plugin is that item's problem, never the whole feed's.
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            _skip(report, result.key, str(exc) or type(exc).__name__)
            if isinstance(result.key, str) and result.key:
                unreadable.append(event_uuid(entry.name, result.key))
            continue
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _skip(report: FetchReport, key: object, reason: str) -> None:
    report.skipped += 1
    _reason(report, key, reason)


def _reason(report: FetchReport, key: object, reason: str) -> None:
    if len(report.skip_reasons) < MAX_REPORTED_SKIPS:
        shown = key if isinstance(key, str) and key else "?"
        report.skip_reasons.append(f"{shown[:200]}: {reason[:MAX_REASON_CHARS]}")


def download_feed(entry: ConfiguredProvider, sink: IO[bytes]) -> int:
    """Run the provider's fetch step into `sink`; return the bytes written."""
    timeout = httpx.Timeout(entry.settings.timeout_seconds)
    with httpx.Client(
        timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
    ) as client:
        entry.provider.fetch(entry.settings, client, sink)
    return sink.tell()


def ingest(
    entry: ConfiguredProvider, source: IO[bytes], *, engine: Engine, batch_size: int = 500
) -> FetchReport:
    """Parse `source` with the provider and upsert what it yields, all in one transaction."""
    report = FetchReport(provider=entry.name)
    now = utcnow()
    results = entry.provider.parse(entry.settings, source)
    try:
        with transaction(engine) as session:
            writer = EventWriter(session, now=now)
            unreadable: list[Any] = []
            for batch in _batches(entry, results, batch_size, report, unreadable):
                writer.write(batch)
                writer.sight(unreadable)
                unreadable.clear()
            writer.sight(unreadable)
            counts = writer.finish()
            presence = record_presence(
                session, provider=entry.name, now=now, inserted=counts.inserted
            )
            if counts.inserted or counts.updated or presence.returned:
                bump_data_version(session=session)
    except MarqueeError:
        raise
    except (ValueError, SyntaxError, UnicodeError, LookupError) as exc:
        raise FeedError(f"feed cannot be read: {type(exc).__name__}: {exc}") from exc
    finally:
        close = getattr(results, "close", None)
        if close:
            close()
    report.inserted, report.updated, report.unchanged = (
        counts.inserted,
        counts.updated,
        counts.unchanged,
    )
    report.duplicates = counts.duplicates
    report.absent = presence.absent
    report.skipped += counts.duplicates
    for key in counts.duplicate_keys:
        _reason(report, key, DUPLICATE)
    return report


def fetch_provider(
    entry: ConfiguredProvider, *, engine: Engine, batch_size: int = 500
) -> FetchReport:
    """Fetch one provider now and store what it gives. Raises ProviderError subclasses on failure;
    nothing already stored is lost when it does."""
    started = time.monotonic()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as body:
        size = download_feed(entry, body)
        body.seek(0)
        report = ingest(entry, body, engine=engine, batch_size=batch_size)
    report.bytes = size
    report.seconds = round(time.monotonic() - started, 3)
    return report
