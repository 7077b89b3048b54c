"""Which retention stages apply to a provider: its own MARQUEE_<NAME>_RETENTION_* overrides, else
the MARQUEE_RETENTION_* values. Nothing is set by default, and then retention does nothing."""

from dataclasses import dataclass

from core.errors import ConfigError
from core.plugins.registry import ConfiguredProvider, Registry
from core.settings import RETENTION_STAGES, Settings, check_retention_order, retention_variable


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days of inactivity after which each stage applies; None: the stage is off."""

    hide: int | None = None
    archive: int | None = None
    purge: int | None = None

    @property
    def active(self) -> bool:
        return any(days is not None for days in self.days().values())

    def days(self) -> dict[str, int | None]:
        return {stage: getattr(self, stage) for stage in RETENTION_STAGES}

    def as_dict(self) -> dict[str, int | None]:
        return {f"{stage}_after_days": days for stage, days in self.days().items()}


def policy_for(settings: Settings, entry: ConfiguredProvider) -> RetentionPolicy:
    """`entry`'s policy; ConfigError naming the variables when its stages are out of order."""
    chosen: dict[str, tuple[int | None, str]] = {}
    for stage in RETENTION_STAGES:
        own = getattr(entry.settings, f"retention_{stage}_after_days")
        if own is not None:
            chosen[stage] = (own, retention_variable(entry.provider.env_prefix, stage))
        else:
            chosen[stage] = (
                getattr(settings, retention_variable("MARQUEE_", stage)),
                retention_variable("MARQUEE_", stage),
            )
    try:
        check_retention_order(chosen)
    except ValueError as exc:
        raise ConfigError(f"provider {entry.name!r}: {exc}") from None
    return RetentionPolicy(**{stage: days for stage, (days, _) in chosen.items()})


def policies(settings: Settings, registry: Registry) -> dict[str, RetentionPolicy]:
    """The policy of every provider whose settings could be read, by name. Raises ConfigError for
    the first provider whose stages are out of order: startup stops on it."""
    return {
        name: policy_for(settings, entry)
        for name, entry in sorted(registry.entries.items())
        if isinstance(entry, ConfiguredProvider)
    }
