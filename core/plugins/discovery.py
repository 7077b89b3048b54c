"""Discovery of provider plugins through the `marquee` entry-point group: loading, registering and
asking each plugin's hooks."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

import pluggy
from pydantic import ValidationError

from core.errors import ConfigError
from core.logs import redact
from core.plugins import hookspecs
from core.plugins.contract import Provider, check_provider_name


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None


def format_validation_error(prefix: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        if not error["loc"]:  # a check across fields, whose message names the variables
            problems.append(error["msg"].removeprefix("Value error, "))
            continue
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


def collect_hints(
    manager: pluggy.PluginManager, infos: Mapping[str, PluginInfo]
) -> dict[str, str | None]:
    """Each plugin's `setup_hint`; a hint that fails says so rather than stopping startup."""
    hints: dict[str, str | None] = dict.fromkeys(infos)
    for impl in manager.hook.setup_hint.get_hookimpls():
        try:
            hint = impl.function()
        except Exception as exc:
            hint = f"its setup_hint failed: {type(exc).__name__}: {exc}"
        hints[impl.plugin_name] = redact(str(hint)) if hint else None
    return hints
