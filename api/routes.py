"""The search API: thin routes that translate between HTTP and core."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import RegistryDep, SessionDep
from api.envelope import ApiError, ok
from api.params import parse_date_time
from core.plugins.registry import Registry
from core.store.search import event_summary, get_event, search_events

router = APIRouter()


def search_window(
    registry: Registry,
    starts_at: str | None,
    ends_at: str | None,
    provider: list[str] | None,
) -> tuple[datetime | None, datetime | None, list[str]]:
    """The window and providers a search asks for, checked: ApiError (400) when they are bad.
    Every route that searches (/search, /search.ics) reads its parameters through this."""
    start = parse_date_time("starts_at", starts_at)
    end = parse_date_time("ends_at", ends_at)
    if start and end and start > end:
        raise ApiError(400, "invalid_range", "starts_at must not be after ends_at")
    if not provider:
        return start, end, [entry.name for entry in registry.enabled()]
    unknown = sorted({name for name in provider if name not in registry.entries})
    if unknown:
        known = ", ".join(sorted(registry.entries)) or "none"
        raise ApiError(
            400, "unknown_provider", f"unknown provider {', '.join(unknown)} (known: {known})"
        )
    return start, end, list(dict.fromkeys(provider))


@router.get("/search", operation_id="searchEvents")
def search(
    session: SessionDep,
    registry: RegistryDep,
    starts_at: str | None = None,
    ends_at: str | None = None,
    provider: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    start, end, providers = search_window(registry, starts_at, ends_at, provider)
    rows = search_events(session=session, starts_at=start, ends_at=end, providers=providers)
    return ok({"events": [event_summary(row) for row in rows]})


@router.get("/events/{event_id}", operation_id="getEvent")
def read_event(event_id: str, session: SessionDep, registry: RegistryDep) -> dict[str, Any]:
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        raise ApiError(
            400, "invalid_parameter", f"event id must be a UUID, not {event_id!r}"
        ) from None
    # As /search: an event of a provider the operator disabled is not served.
    enabled = [entry.name for entry in registry.enabled()]
    row = get_event(session=session, event_id=parsed, providers=enabled)
    if row is None:
        raise ApiError(404, "not_found", f"no event with id {parsed}")
    return ok({"event": event_summary(row)})
