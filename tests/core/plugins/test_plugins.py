"""Plugins: discovery through the `marquee` entry-point group only, one test per hook, and startup
validation that stops a bad configuration with one clear message naming the plugin and variable."""

import json
import os
import subprocess
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from pydantic import Field

from core.errors import ConfigError
from core.plugins.contract import Provider, ProviderSettings
from core.plugins.hookspecs import hookimpl
from core.plugins.registry import MisconfiguredProvider, load_registry
from core.settings import Settings
from tests.support.serving import MARQUEE

EMPTY_GROUP = "marquee_tests_no_plugins"


class Named(Provider):
    def parse(self, settings, source):  # type: ignore[no-untyped-def]
        return iter(())


class Contributes:
    """A throwaway plugin, registered for one test through `extra_plugins`."""

    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def register_providers(self) -> list[Provider]:
        return [Named(name) for name in self.names]


def fake_distribution(site: Path, dist: str, group: str, plugins: dict[str, str]) -> Path:
    """Write what an installer writes: a module per plugin and a .dist-info naming its entry point."""
    info = site / f"{dist.replace('-', '_')}-9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 9.9\n")
    lines = [f"[{group}]"]
    for module, source in plugins.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        lines.append(f"{module} = {module}")
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return site


def run_marquee(
    *args: str, env: dict[str, str], pythonpath: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    if pythonpath:
        full_env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [MARQUEE, *args], env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


# ---- hooks: one test each (tests/test_docs.py enforces it) --------------------------------------


def test_hook_register_providers() -> None:
    registry = load_registry(
        Settings(MARQUEE_PROVIDERS=["alpha"]),
        extra_plugins={"two-feeds": Contributes("alpha", "beta")},
        entry_point_group=None,
    )
    assert sorted(registry.entries) == ["alpha", "beta"]
    assert registry.entries["alpha"].plugin.name == "two-feeds"
    assert [entry.name for entry in registry.enabled()] == ["alpha"]


class NeedsSetup:
    """A plugin whose providers come from a setting not given yet, and that says so."""

    @hookimpl
    def register_providers(self) -> list[Provider]:
        return []

    @hookimpl
    def setup_hint(self) -> str:
        return "no calendars configured (MARQUEE_CALENDARS is empty)"


def test_hook_setup_hint() -> None:
    registry = load_registry(
        Settings(MARQUEE_PROVIDERS=[]),
        extra_plugins={"calendars": NeedsSetup(), "two-feeds": Contributes("alpha")},
        entry_point_group=None,
    )
    assert registry.plugins["calendars"].describe() == (
        "registers no provider yet: no calendars configured (MARQUEE_CALENDARS is empty)"
    )
    assert registry.plugins["two-feeds"].describe() == "registers alpha"

    with pytest.raises(ConfigError) as raised:
        load_registry(
            Settings(MARQUEE_PROVIDERS=["calendars"]),
            extra_plugins={"calendars": NeedsSetup()},
            entry_point_group=None,
        )
    assert "'calendars' is a plugin, not a provider" in str(raised.value)
    assert "MARQUEE_CALENDARS is empty" in str(raised.value)


def test_a_plugin_without_setup_hint_is_listed_with_what_it_registers() -> None:
    registry = load_registry(
        Settings(MARQUEE_PROVIDERS=[]),
        extra_plugins={"quiet": Contributes()},
        entry_point_group=None,
    )
    assert registry.plugins["quiet"].describe() == "registers no provider yet"


# ---- discovery ----------------------------------------------------------------------------------


def test_builtin_providers_are_declared_in_the_marquee_entry_point_group() -> None:
    declared = {ep.name: ep.dist.name for ep in entry_points(group="marquee") if ep.dist}
    assert declared["fever"] == "marquee-events"
    assert declared["ical"] == "marquee-events"


def test_registry_has_no_provider_without_entry_points() -> None:
    registry = load_registry(Settings(MARQUEE_PROVIDERS=[]), entry_point_group=EMPTY_GROUP)
    assert registry.entries == {}


def test_installed_example_plugin_is_discovered_but_disabled_by_default(
    with_example_plugin: Path,
) -> None:
    registry = load_registry(Settings())
    entry = registry.entries["example_json"]
    assert entry.plugin.distribution == "marquee-example-json"
    assert entry.plugin.version == "0.1.0"
    assert not entry.enabled
    assert registry.entries["fever"].enabled


def test_example_plugin_is_not_registered_unless_installed() -> None:
    assert "example_json" not in load_registry(Settings()).entries


def test_enabled_example_plugin_gets_its_own_beat_entry(
    with_example_plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.scheduling.schedule import build_beat_schedule

    monkeypatch.setenv("MARQUEE_PROVIDERS", "fever,example_json")
    monkeypatch.setenv("MARQUEE_EXAMPLE_JSON_INTERVAL_SECONDS", "900")
    schedule = build_beat_schedule(load_registry(Settings()).entries.values(), queue="marquee")
    assert schedule["fetch-example_json"]["schedule"] == 900.0
    assert schedule["fetch-example_json"]["args"] == ("example_json",)


# ---- startup validation, in process -------------------------------------------------------------


def test_unknown_provider_name_stops_startup_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"MARQUEE_PROVIDERS names unknown provider\(s\) fevr"):
        load_registry(Settings(MARQUEE_PROVIDERS=["fevr"]), entry_point_group=EMPTY_GROUP)


def test_duplicate_provider_name_stops_startup_naming_both_plugins() -> None:
    with pytest.raises(
        ConfigError, match="'same' is registered twice: by plugin 'one' and by plugin 'two'"
    ):
        load_registry(
            Settings(MARQUEE_PROVIDERS=[]),
            extra_plugins={"one": Contributes("same"), "two": Contributes("same")},
            entry_point_group=None,
        )


def test_invalid_settings_of_enabled_provider_stop_startup_naming_plugin_and_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_ALPHA_TIMEZONE", "Europe/Atlantis")
    with pytest.raises(ConfigError) as caught:
        load_registry(
            Settings(MARQUEE_PROVIDERS=["alpha"]),
            extra_plugins={"feeds": Contributes("alpha")},
            entry_point_group=None,
        )
    assert "plugin 'feeds'" in str(caught.value)
    assert "MARQUEE_ALPHA_TIMEZONE: Value error, unknown time zone 'Europe/Atlantis'" in str(
        caught.value
    )


class ListSettings(ProviderSettings):
    venues: list[str] = Field(default_factory=list, description="Venue ids, as a JSON list.")


class WithList(Named):
    settings_class = ListSettings


def test_list_setting_that_is_not_json_stops_startup_naming_plugin_and_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Feeds:
        @hookimpl
        def register_providers(self) -> list[Provider]:
            return [WithList("gamma")]

    monkeypatch.setenv("MARQUEE_GAMMA_VENUES", "hall-a,hall-b")
    with pytest.raises(ConfigError) as caught:
        load_registry(
            Settings(MARQUEE_PROVIDERS=["gamma"]),
            extra_plugins={"venues": Feeds()},
            entry_point_group=None,
        )
    assert "provider 'gamma' (plugin 'venues') has invalid settings: MARQUEE_GAMMA_VENUES:" in str(
        caught.value
    )


def test_invalid_settings_of_disabled_provider_are_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_BETA_INTERVAL_SECONDS", "1")
    registry = load_registry(
        Settings(MARQUEE_PROVIDERS=["alpha"]),
        extra_plugins={"feeds": Contributes("alpha", "beta")},
        entry_point_group=None,
    )
    assert isinstance(registry.entries["beta"], MisconfiguredProvider)
    assert "MARQUEE_BETA_INTERVAL_SECONDS" in (registry.entries["beta"].settings_error or "")


def test_plugin_raising_in_its_hook_is_reported_with_its_name() -> None:
    class Raises:
        @hookimpl
        def register_providers(self) -> list[Provider]:
            raise RuntimeError("feed list unreadable")

    with pytest.raises(
        ConfigError, match="plugin 'flaky' failed in register_providers: RuntimeError"
    ):
        load_registry(
            Settings(MARQUEE_PROVIDERS=[]),
            extra_plugins={"flaky": Raises()},
            entry_point_group=None,
        )


def test_plugin_with_a_misspelled_hook_stops_startup_naming_it() -> None:
    class Misspelled:
        @hookimpl
        def register_provider(self) -> list[Provider]:
            return []

    with pytest.raises(ConfigError, match="plugin 'typo' implements an unknown hook"):
        load_registry(
            Settings(MARQUEE_PROVIDERS=[]),
            extra_plugins={"typo": Misspelled()},
            entry_point_group=None,
        )


def test_plugin_failing_to_import_is_reported_with_name_and_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = "marquee_tests_broken"
    site = fake_distribution(
        tmp_path / "site",
        "broken-plugin",
        group,
        {"broken_on_import": "import no_such_module_xyz\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigError) as caught:
        load_registry(Settings(MARQUEE_PROVIDERS=[]), entry_point_group=group)
    assert str(caught.value).startswith(
        "plugin 'broken_on_import' (broken-plugin) failed to load: ModuleNotFoundError"
    )


# ---- startup validation, through the real command -----------------------------------------------


def assert_config_exit(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, "one message, one line"
    for needle in needles:
        assert needle in result.stderr


@pytest.mark.parametrize("command", [["providers"], ["serve", "--port", "0"], ["fetch", "fever"]])
def test_command_with_unknown_provider_exits_2_with_one_message(
    command: list[str], example_plugin_site: Path
) -> None:
    result = run_marquee(
        *command, env={"MARQUEE_PROVIDERS": "fever,nosuch"}, pythonpath=example_plugin_site
    )
    assert_config_exit(result, "MARQUEE_PROVIDERS", "nosuch", "registered: ", "example_json")


def test_command_with_invalid_provider_setting_exits_2_naming_the_variable() -> None:
    result = run_marquee("serve", "--port", "0", env={"MARQUEE_FEVER_TIMEOUT_SECONDS": "soon"})
    assert_config_exit(result, "provider 'fever' (plugin 'fever')", "MARQUEE_FEVER_TIMEOUT_SECONDS")


def test_command_with_plugin_failing_to_import_exits_2_naming_it(tmp_path: Path) -> None:
    site = fake_distribution(
        tmp_path, "acme-events", "marquee", {"acme_events": "raise RuntimeError('acme is down')\n"}
    )
    result = run_marquee("providers", env={}, pythonpath=site)
    assert_config_exit(
        result, "plugin 'acme_events' (acme-events) failed to load: RuntimeError: acme is down"
    )


def test_command_with_two_plugins_claiming_one_name_exits_2_naming_both(tmp_path: Path) -> None:
    source = """
        from providers.fever.plugin import FeverProvider
        from core.plugins.hookspecs import hookimpl

        @hookimpl
        def register_providers():
            return [FeverProvider()]
    """
    site = fake_distribution(tmp_path, "fever-clone", "marquee", {"fever_clone": source})
    result = run_marquee("serve", "--port", "0", env={}, pythonpath=site)
    assert_config_exit(result, "'fever' is registered twice", "'fever'", "'fever_clone'")


# ---- introspection ------------------------------------------------------------------------------


def test_providers_command_shows_distribution_and_version_enabled_or_not(
    example_plugin_site: Path,
) -> None:
    env = {"MARQUEE_PROVIDERS": "example_json"}
    result = run_marquee("providers", "--json", env=env, pythonpath=example_plugin_site)
    assert result.returncode == 0, result.stderr
    listing = {item["name"]: item for item in json.loads(result.stdout)["providers"]}
    assert listing["example_json"]["enabled"] is True
    assert listing["example_json"]["distribution"] == "marquee-example-json"
    assert listing["example_json"]["version"] == "0.1.0"
    assert listing["fever"]["enabled"] is False
    assert (listing["fever"]["distribution"], listing["fever"]["version"]) == (
        "marquee-events",
        "0.1.0",
    )

    text = run_marquee("providers", env=env, pythonpath=example_plugin_site).stdout
    assert "example_json (enabled; plugin example_json from marquee-example-json 0.1.0)" in text
    assert "fever (disabled; plugin fever from marquee-events 0.1.0)" in text
