"""Operator endpoint: /providers, what each provider is doing."""

from typing import Any

from fastapi import APIRouter, Request

from api.deps import RegistryDep, SessionDep
from api.envelope import ok
from core.plugins.registry import ConfiguredProvider, ProviderEntry
from core.retention.policy import policy_for
from core.runs.status import event_counts, last_retention_run, provider_status, retention_counts

router = APIRouter(tags=["operations"])


def _describe(entry: ProviderEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "title": entry.provider.title or None,
        "enabled": entry.enabled,
        "plugin": {
            "name": entry.plugin.name,
            "distribution": entry.plugin.distribution,
            "version": entry.plugin.version,
        },
        "interval_seconds": (
            entry.settings.interval_seconds if isinstance(entry, ConfiguredProvider) else None
        ),
        "settings_error": entry.settings_error,
    }


@router.get("/providers", operation_id="listProviders")
def list_providers(request: Request, session: SessionDep, registry: RegistryDep) -> dict[str, Any]:
    """Every registered provider: plugin, schedule, last runs, failures, event counts, retention."""
    counts = event_counts(session=session)
    states = retention_counts(session=session, events=counts)
    settings = request.app.state.settings
    providers = [
        {
            **_describe(entry),
            **provider_status(session=session, provider=entry.name, counts=counts).as_dict(),
            "retention": {
                "policy": (
                    policy_for(settings, entry).as_dict()
                    if isinstance(entry, ConfiguredProvider)
                    else None
                ),
                "events": states.get(entry.name, {"active": 0, "hidden": 0, "archived": 0}),
                "last_run": last_retention_run(session=session, provider=entry.name),
            },
        }
        for entry in registry.entries.values()
    ]
    return ok({"providers": providers})
