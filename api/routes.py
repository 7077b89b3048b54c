"""The search API: thin routes that translate between HTTP and core."""

import uuid

from fastapi import APIRouter, Request, Response
from starlette.routing import Route

from api.deps import RegistryDep
from api.envelope import ApiError
from api.params import parse_date_time
from api.searching import JSON, SearchService
from core.plugins.registry import Registry
from core.store.reader import SearchKey

router = APIRouter()


def search_key(
    registry: Registry, starts_at: str | None, ends_at: str | None, provider: list[str]
) -> SearchKey:
    """The normalised search a query string asks for, or the 400 that says what is wrong with it."""
    start = parse_date_time("starts_at", starts_at)
    end = parse_date_time("ends_at", ends_at)
    if start and end and start > end:
        raise ApiError(400, "invalid_range", "starts_at must not be after ends_at")
    if provider:
        unknown = sorted({name for name in provider if name not in registry.entries})
        if unknown:
            known = ", ".join(sorted(registry.entries)) or "none"
            raise ApiError(
                400, "unknown_provider", f"unknown provider {', '.join(unknown)} (known: {known})"
            )
        providers = set(provider)
    else:
        providers = {entry.name for entry in registry.enabled()}
    return SearchKey(start, end, tuple(sorted(providers)))


# The hot route is a plain Starlette route: no dependency solving, the query read as it comes.
# The served OpenAPI document takes this operation from the contract file (api/openapi.py).
async def search(request: Request) -> Response:
    request.scope["route"] = SEARCH  # as FastAPI's routes do, for the request metrics' label
    service: SearchService = request.app.state.search
    key = service.parsed.get(request.scope["query_string"])
    if key is None:
        query = request.query_params
        key = search_key(
            request.app.state.registry,
            query.get("starts_at"),
            query.get("ends_at"),
            query.getlist("provider"),
        )
        service.remember(request.scope["query_string"], key)
    return await service.search(request, key)


SEARCH = Route("/search", search, methods=["GET"], name="searchEvents")
router.routes.append(SEARCH)


@router.get("/events/{event_id}", operation_id="getEvent", response_class=Response)
async def read_event(event_id: str, request: Request, registry: RegistryDep) -> Response:
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        raise ApiError(
            400, "invalid_parameter", f"event id must be a UUID, not {event_id!r}"
        ) from None
    # As /search: an event of a provider the operator disabled is not served.
    enabled = [entry.name for entry in registry.enabled()]
    service: SearchService = request.app.state.search
    body = await service.event(parsed, enabled)
    if body is None:
        raise ApiError(404, "not_found", f"no event with id {parsed}")
    return Response(body, media_type=JSON)
