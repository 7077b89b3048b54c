"""Settings of the iCalendar plugin: which feeds exist (one variable for the plugin), and each
feed's own settings, read from `MARQUEE_<FEED>_*` like any provider's."""

from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from marquee import ConfigError, EnvSettings, ProviderSettings, check_provider_name, comma_list

FEEDS_VARIABLE = "MARQUEE_ICAL_FEEDS"


class IcalPluginSettings(EnvSettings):
    """The plugin's one setting: the names of the iCalendar feeds, each becoming a provider."""

    model_config = SettingsConfigDict(case_sensitive=True)

    MARQUEE_ICAL_FEEDS: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated provider names, one per iCalendar feed (empty: none).",
    )

    @field_validator("MARQUEE_ICAL_FEEDS", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return comma_list(value)


def feed_names() -> list[str]:
    """The configured feed names, checked; raises ConfigError naming the variable at fault."""
    try:
        names = IcalPluginSettings().MARQUEE_ICAL_FEEDS
    except ValidationError as exc:
        raise ConfigError(f"{FEEDS_VARIABLE}: {exc.errors()[0]['msg']}") from exc
    except ValueError as exc:  # a MARQUEE_ICAL_FEEDS_FILE that cannot be read, already named
        raise ConfigError(str(exc)) from exc
    for name in names:
        try:
            check_provider_name(name)
        except ValueError as exc:
            raise ConfigError(f"{FEEDS_VARIABLE}: {exc}") from None
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"{FEEDS_VARIABLE} names feed(s) {', '.join(twice)} more than once")
    return names


class IcalSettings(ProviderSettings):
    """One iCalendar feed, read from `MARQUEE_<FEED>_*`."""

    url: str = Field(description="Where the .ics feed is fetched from (required).")  # type: ignore[assignment]
    timezone: str = Field(
        default="UTC",
        description="IANA zone times are shown in; floating times (no TZID) are taken in it.",
    )
    horizon_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=365, description="Recurring events are expanded this many days ahead of now."
    )
    past_days: Annotated[int, Field(ge=0, le=3650)] = Field(
        default=365, description="Occurrences that ended more than this many days ago are left out."
    )
    max_occurrences: Annotated[int, Field(ge=1, le=100_000)] = Field(
        default=1000, description="At most this many occurrences per recurring event; more are cut."
    )
    interval_seconds: Annotated[int, Field(ge=10, le=86_400)] = Field(
        default=900, description="How often the scheduler fetches this feed."
    )
