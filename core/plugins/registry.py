"""The registry of providers and plugins, and the startup validation of MARQUEE_PROVIDERS and of
each provider's settings."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr, ValidationError

from core.errors import ConfigError
from core.logs import redact
from core.plugins.contract import Provider, ProviderSettings
from core.plugins.discovery import (
    PluginInfo,
    collect_hints,
    collect_providers,
    create_plugin_manager,
    format_validation_error,
)
from core.settings import SettingFileError, Settings

MASK = "********"


@dataclass(frozen=True, slots=True)
class ConfiguredProvider:
    """A registered provider whose settings were read and validated: the only kind that runs."""

    provider: Provider
    plugin: PluginInfo
    enabled: bool
    settings: ProviderSettings

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def settings_error(self) -> None:
        return None

    def masked_settings(self) -> dict[str, Any]:
        """Settings as an operator may see them: secrets masked, URLs' credentials redacted."""
        shown: dict[str, Any] = {}
        for key, value in self.settings.model_dump().items():
            secret = key in self.provider.secret_settings or isinstance(
                getattr(self.settings, key), SecretStr
            )
            if secret and value:
                shown[key] = MASK
            else:
                shown[key] = redact(value) if isinstance(value, str) else value
        return shown


@dataclass(frozen=True, slots=True)
class MisconfiguredProvider:
    """A registered provider whose settings are invalid. Only a disabled one can exist in a running
    process: an enabled one stops startup."""

    provider: Provider
    plugin: PluginInfo
    enabled: bool
    settings_error: str

    @property
    def name(self) -> str:
        return self.provider.name

    def masked_settings(self) -> dict[str, Any]:
        return {}


ProviderEntry = ConfiguredProvider | MisconfiguredProvider


@dataclass(frozen=True, slots=True)
class PluginStatus:
    """An installed plugin, whether or not it registers any provider, and how to configure it."""

    info: PluginInfo
    providers: tuple[str, ...]
    hint: str | None

    def describe(self) -> str:
        """Why this plugin registers what it does, in one line an operator can act on."""
        if self.providers:
            shown = f"registers {', '.join(self.providers)}"
        else:
            shown = "registers no provider yet"
        return f"{shown}: {self.hint}" if self.hint else shown


@dataclass(slots=True)
class Registry:
    entries: dict[str, ProviderEntry] = field(default_factory=dict)
    plugins: dict[str, PluginStatus] = field(default_factory=dict)

    def plugin_note(self, name: str) -> str | None:
        """For a provider name that is a plugin's name, what that plugin registers and how to
        configure it (the iCalendar plugin's providers are its feeds, never `ical`)."""
        plugin = self.plugins.get(name)
        if plugin is None or name in plugin.providers:
            return None
        return f"{name!r} is a plugin, not a provider: it {plugin.describe()}"

    def explain_unknown(self, name: str) -> str:
        known = ", ".join(sorted(self.entries)) or "none"
        note = self.plugin_note(name)
        return f"registered: {known}" + (f"; {note}" if note else "")

    def enabled(self) -> list[ConfiguredProvider]:
        return [
            entry
            for entry in self.entries.values()
            if entry.enabled and isinstance(entry, ConfiguredProvider)
        ]

    def get(self, name: str) -> ProviderEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise ConfigError(f"unknown provider {name!r} ({self.explain_unknown(name)})") from None

    def configured(self, name: str) -> ConfiguredProvider:
        """The provider `name`, ready to run; ConfigError when it is unknown or misconfigured."""
        entry = self.get(name)
        if isinstance(entry, MisconfiguredProvider):
            raise ConfigError(
                f"provider {name!r} (plugin {entry.plugin.name!r}) has invalid settings: "
                f"{entry.settings_error}"
            )
        return entry


def _settings_problem(prefix: str, exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return format_validation_error(prefix, exc)
    if isinstance(exc, SettingFileError):
        return str(exc)
    named = re.search(r'field "(\w+)"', str(exc))  # how pydantic-settings names the culprit
    variable = prefix + named.group(1).upper() if named else prefix + "*"
    return f"{variable}: {type(exc).__name__}: {exc}"


def load_registry(
    settings: Settings,
    *,
    extra_plugins: Mapping[str, object] | None = None,
    entry_point_group: str | None = "marquee",
) -> Registry:
    """Discover providers, check MARQUEE_PROVIDERS against them and validate enabled settings.

    Raises ConfigError, naming the plugin and variable at fault, when the process must not start.
    """
    manager, infos = create_plugin_manager(extra_plugins, entry_point_group=entry_point_group)
    providers = collect_providers(manager, infos)
    registry = Registry()
    hints = collect_hints(manager, infos)
    for name, info in sorted(infos.items()):
        own = tuple(sorted(p.name for p, owner in providers if owner.name == name))
        registry.plugins[name] = PluginStatus(info, own, hints.get(name))
    names = {provider.name for provider, _ in providers}
    unknown = [name for name in settings.MARQUEE_PROVIDERS if name not in names]
    if unknown:
        notes = [note for note in map(registry.plugin_note, unknown) if note]
        raise ConfigError(
            f"MARQUEE_PROVIDERS names unknown provider(s) {', '.join(unknown)}; "
            f"registered: {', '.join(sorted(names)) or 'none'}"
            + "".join(f"; {note}" for note in notes)
        )
    for provider, info in sorted(providers, key=lambda pair: pair[0].name):
        enabled = provider.name in settings.MARQUEE_PROVIDERS
        registry.entries[provider.name] = _configure(provider, info, enabled=enabled)
    return registry


def _configure(provider: Provider, info: PluginInfo, *, enabled: bool) -> ProviderEntry:
    try:
        return ConfiguredProvider(provider, info, enabled, provider.load_settings())
    except Exception as exc:
        # Not only ValidationError: pydantic-settings raises SettingsError for a list or dict
        # setting that is not JSON, and a plugin's own validator may raise anything.
        problem = _settings_problem(provider.env_prefix, exc)
        if enabled:
            raise ConfigError(
                f"provider {provider.name!r} (plugin {info.name!r}) has invalid settings: {problem}"
            ) from exc
        return MisconfiguredProvider(provider, info, enabled, problem)
