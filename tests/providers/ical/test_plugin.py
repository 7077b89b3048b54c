"""MARQUEE_ICAL_FEEDS turns one plugin into one provider per feed, checked before Marquee starts."""

import pytest

from core.errors import ConfigError
from core.plugins.registry import MisconfiguredProvider, load_registry
from core.settings import Settings
from providers.ical.plugin import IcalProvider
from providers.ical.settings import IcalSettings


def ical_entries(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, object]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    registry = load_registry(Settings())
    return {name: e for name, e in registry.entries.items() if e.plugin.name == "ical"}


def test_plugin_registers_no_provider_when_no_feed_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ical_entries(monkeypatch) == {}


def test_each_configured_feed_becomes_its_own_provider_with_its_own_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = ical_entries(
        monkeypatch,
        MARQUEE_ICAL_FEEDS=" venue_a, Venue_B ",
        MARQUEE_PROVIDERS="venue_a",
        MARQUEE_VENUE_A_URL="https://venue-a.test/calendar.ics",
        MARQUEE_VENUE_A_TIMEZONE="Europe/Madrid",
        MARQUEE_VENUE_A_HORIZON_DAYS="30",
        MARQUEE_VENUE_A_INTERVAL_SECONDS="600",
        MARQUEE_VENUE_B_URL="https://venue-b.test/calendar.ics",
    )

    assert sorted(entries) == ["venue_a", "venue_b"]
    venue_a, venue_b = entries["venue_a"], entries["venue_b"]
    assert isinstance(venue_a.provider, IcalProvider) and venue_a.enabled
    assert not venue_b.enabled
    assert isinstance(venue_a.settings, IcalSettings) and isinstance(venue_b.settings, IcalSettings)
    assert venue_a.settings.url == "https://venue-a.test/calendar.ics"
    assert (venue_a.settings.timezone, venue_a.settings.horizon_days) == ("Europe/Madrid", 30)
    assert venue_a.settings.interval_seconds == 600
    assert venue_b.settings.url == "https://venue-b.test/calendar.ics"
    assert (venue_b.settings.timezone, venue_b.settings.interval_seconds) == ("UTC", 900)
    assert (venue_b.settings.horizon_days, venue_b.settings.past_days) == (365, 365)
    assert venue_b.settings.max_occurrences == 1000


@pytest.mark.parametrize("name", ["venue-a", "1venue", "v" * 41, "venue a"])
def test_a_bad_feed_name_stops_startup_naming_the_plugin_and_variable(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    with pytest.raises(ConfigError, match=r"plugin 'ical'.*MARQUEE_ICAL_FEEDS"):
        ical_entries(monkeypatch, MARQUEE_ICAL_FEEDS=f"venue_ok,{name}")


def test_a_feed_named_twice_stops_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match=r"MARQUEE_ICAL_FEEDS names feed\(s\) venue_a more"):
        ical_entries(monkeypatch, MARQUEE_ICAL_FEEDS="venue_a,venue_b,VENUE_A")


def test_a_feed_named_like_another_provider_stops_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match=r"'fever' is registered twice.*'ical'"):
        ical_entries(monkeypatch, MARQUEE_ICAL_FEEDS="fever")


def test_an_enabled_feed_without_url_stops_startup_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match="MARQUEE_VENUE_A_URL"):
        ical_entries(monkeypatch, MARQUEE_ICAL_FEEDS="venue_a", MARQUEE_PROVIDERS="venue_a")


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("HORIZON_DAYS", "0"),
        ("PAST_DAYS", "-1"),
        ("MAX_OCCURRENCES", "many"),
        ("TIMEZONE", "Mars/Olympus"),
        ("URL", "ftp://venue-a.test/calendar.ics"),
    ],
)
def test_an_invalid_feed_setting_stops_startup_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=f"'venue_a'.*MARQUEE_VENUE_A_{setting}"):
        env = {"MARQUEE_VENUE_A_URL": "https://venue-a.test/calendar.ics"}
        env[f"MARQUEE_VENUE_A_{setting}"] = value
        ical_entries(monkeypatch, MARQUEE_ICAL_FEEDS="venue_a", MARQUEE_PROVIDERS="venue_a", **env)


def test_a_configured_but_disabled_feed_with_bad_settings_does_not_stop_startup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entries = ical_entries(monkeypatch, MARQUEE_ICAL_FEEDS="venue_a", MARQUEE_PROVIDERS="fever")

    assert isinstance(entries["venue_a"], MisconfiguredProvider)
    assert "MARQUEE_VENUE_A_URL" in (entries["venue_a"].settings_error or "")
