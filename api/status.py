"""Operator endpoint: /providers, what each provider is doing."""

from typing import Any

from fastapi import APIRouter

from api.deps import RegistryDep, SessionDep
from api.envelope import ok
from core.plugins.registry import ConfiguredProvider, ProviderEntry
from core.runs.status import event_counts, provider_status

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
def list_providers(session: SessionDep, registry: RegistryDep) -> dict[str, Any]:
    """Every registered provider: plugin, schedule, last runs, failures and event counts."""
    counts = event_counts(session=session)
    providers = [
        {
            **_describe(entry),
            **provider_status(session=session, provider=entry.name, counts=counts).as_dict(),
        }
        for entry in registry.entries.values()
    ]
    return ok({"providers": providers})
