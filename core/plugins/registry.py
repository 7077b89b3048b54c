"""Discovery of provider plugins through the `marquee` entry-point group, and startup validation."""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy
from pydantic import SecretStr, ValidationError

from core.errors import ConfigError
from core.logs import redact
from core.plugins import hookspecs
from core.plugins.contract import Provider, ProviderSettings, check_provider_name
from core.settings import Settings

MASK = "********"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None


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


@dataclass(slots=True)
class Registry:
    entries: dict[str, ProviderEntry] = field(default_factory=dict)

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
            known = ", ".join(sorted(self.entries)) or "none"
            raise ConfigError(f"unknown provider {name!r} (registered: {known})") from None

    def configured(self, name: str) -> ConfiguredProvider:
        """The provider `name`, ready to run; ConfigError when it is unknown or misconfigured."""
        entry = self.get(name)
        if isinstance(entry, MisconfiguredProvider):
            raise ConfigError(
                f"provider {name!r} (plugin {entry.plugin.name!r}) has invalid settings: "
                f"{entry.settings_error}"
            )
        return entry


def format_validation_error(prefix: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        variable = prefix + "_".join(str(part) for part in error["loc"]).upper()
        problems.append(f"{variable}: {error['msg']}")
    return "; ".join(problems)


def _entry_point_plugins(group: str) -> Iterable[tuple[EntryPoint, PluginInfo]]:
    for entry_point in sorted(entry_points(group=group), key=lambda ep: ep.name):
        dist = entry_point.dist
        yield (
            entry_point,
            PluginInfo(
                name=entry_point.name,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
            ),
        )


def create_plugin_manager(
    extra_plugins: Mapping[str, object] | None = None, *, entry_point_group: str | None = "marquee"
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """Load every plugin of the entry-point group (plus `extra_plugins`, for tests)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    loaded = list(_entry_point_plugins(entry_point_group)) if entry_point_group else []
    for entry_point, info in loaded:
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise ConfigError(
                f"plugin {info.name!r} ({info.distribution or 'unknown distribution'}) "
                f"failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        _register(manager, plugin, info)
        infos[info.name] = info
    for name, plugin in (extra_plugins or {}).items():
        info = PluginInfo(name=name)
        _register(manager, plugin, info)
        infos[name] = info
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or repr(exc.plugin)
        raise ConfigError(f"plugin {name!r} implements an unknown hook: {exc}") from exc
    return manager, infos


def _register(manager: pluggy.PluginManager, plugin: object, info: PluginInfo) -> None:
    try:
        manager.register(plugin, name=info.name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        raise ConfigError(f"plugin {info.name!r} cannot be registered: {exc}") from exc


def collect_providers(
    manager: pluggy.PluginManager, infos: Mapping[str, PluginInfo]
) -> list[tuple[Provider, PluginInfo]]:
    found: list[tuple[Provider, PluginInfo]] = []
    owner: dict[str, str] = {}
    for impl in manager.hook.register_providers.get_hookimpls():
        info = infos.get(impl.plugin_name, PluginInfo(name=impl.plugin_name))
        try:
            providers = list(impl.function() or ())
        except ConfigError as exc:
            raise ConfigError(f"plugin {info.name!r}: {exc}") from exc
        except ValidationError as exc:
            raise ConfigError(f"plugin {info.name!r}: {format_validation_error('', exc)}") from exc
        except Exception as exc:
            raise ConfigError(
                f"plugin {info.name!r} failed in register_providers: {type(exc).__name__}: {exc}"
            ) from exc
        for provider in providers:
            if not isinstance(provider, Provider):
                raise ConfigError(f"plugin {info.name!r} returned {provider!r}, not a Provider")
            try:
                check_provider_name(provider.name)
            except ValueError as exc:
                raise ConfigError(f"plugin {info.name!r}: {exc}") from None
            if provider.name in owner:
                raise ConfigError(
                    f"provider {provider.name!r} is registered twice: by plugin "
                    f"{owner[provider.name]!r} and by plugin {info.name!r}"
                )
            owner[provider.name] = info.name
            found.append((provider, info))
    return found


def _settings_problem(prefix: str, exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return format_validation_error(prefix, exc)
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
    names = {provider.name for provider, _ in providers}
    unknown = [name for name in settings.MARQUEE_PROVIDERS if name not in names]
    if unknown:
        raise ConfigError(
            f"MARQUEE_PROVIDERS names unknown provider(s) {', '.join(unknown)}; "
            f"registered: {', '.join(sorted(names)) or 'none'}"
        )
    registry = Registry()
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
