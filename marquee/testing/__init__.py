"""The provider contract kit: one pytest suite every provider, built-in or third-party, runs against
its own fixtures. Subclass `ProviderContract` in a test module named `Test...`:

    class TestMyFeedContract(ProviderContract):
        fixture = FIXTURES / "feed.json"           # a good feed
        broken_fixture = FIXTURES / "broken.json"  # some good items and some that cannot be read
        min_events = 3
        plugin = my_package.plugin                 # the module named by the entry point

        def make_provider(self) -> Provider:
            return MyProvider()

Test tooling (needs pytest and openapi-schema-validator); the running service never imports it.
"""

import io
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from core.errors import ConfigError, FeedError
from core.ingest.normalise import event_uuid, normalise
from core.ingest.pipeline import fetch_provider, ingest
from core.plugins.contract import InvalidItem, ParsedEvent, ParseResult, Provider, ProviderSettings
from core.plugins.registry import ConfiguredProvider, PluginInfo, load_registry
from core.settings import Settings
from core.store import models  # noqa: F401  (registers the tables create_all makes)
from core.store.db import create_db_engine, transaction
from core.store.search import event_summary, search_events
from marquee.testing.support import (
    KIT_PLUGIN,
    OneProvider,
    block_network,
    event_summary_validator,
    serving,
)


class ProviderContract:
    """What every provider promises. Override `make_provider` and the fixture attributes."""

    fixture: ClassVar[Path]
    broken_fixture: ClassVar[Path]
    min_events: ClassVar[int] = 1
    min_broken: ClassVar[int] = 1
    plugin: ClassVar[ModuleType | object | None] = None
    # MARQUEE_<NAME>_<KEY> values the fixtures need (e.g. {"TIMEZONE": "Europe/Madrid"}).
    settings_env: ClassVar[Mapping[str, str]] = {}
    # Values each of which must stop startup, naming its variable.
    invalid_settings_env: ClassVar[Mapping[str, str]] = {
        "TIMEZONE": "Mars/Olympus_Mons",
        "INTERVAL_SECONDS": "1",
        "TIMEOUT_SECONDS": "-5",
    }
    # A document that is no feed at all; None when every byte string is a (possibly empty) feed.
    unreadable: ClassVar[bytes | None] = b"\x00\x01 this is not a feed \xff"
    # False for providers whose fetch does not download `settings.url`.
    fetches_url: ClassVar[bool] = True

    def make_provider(self) -> Provider:
        raise NotImplementedError("return the provider under test")

    # ---- fixtures -------------------------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _contract_environment(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Only the settings this suite sets: no shell variables, no `.env` of the developer."""
        for name in list(os.environ):
            if name.startswith(("MARQUEE_", "DATABASE_")):
                monkeypatch.delenv(name)
        monkeypatch.chdir(tmp_path)
        prefix = self.make_provider().env_prefix
        for key, value in self.settings_env.items():
            monkeypatch.setenv(prefix + key, value)

    @pytest.fixture
    def provider_settings(self) -> ProviderSettings:
        return self.make_provider().load_settings()

    @pytest.fixture
    def contract_engine(self, tmp_path: Path) -> Iterator[Engine]:
        """A real SQLite database with Marquee's tables, as `marquee run` uses by default."""
        engine = create_db_engine(Settings(DATABASE_URL=f"sqlite:///{tmp_path / 'contract.db'}"))
        SQLModel.metadata.create_all(engine)
        yield engine
        engine.dispose()

    def entry(self, settings: ProviderSettings) -> ConfiguredProvider:
        return ConfiguredProvider(
            self.make_provider(), PluginInfo(name=KIT_PLUGIN), enabled=True, settings=settings
        )

    def parse(self, settings: ProviderSettings, path: Path) -> list[ParseResult]:
        return list(self.make_provider().parse(settings, io.BytesIO(path.read_bytes())))

    def events(self, settings: ProviderSettings, path: Path) -> list[ParsedEvent]:
        return [item for item in self.parse(settings, path) if isinstance(item, ParsedEvent)]

    def stored_count(self, engine: Engine) -> int:
        with transaction(engine) as session:
            return len(search_events(session=session, providers=[self.make_provider().name]))

    # ---- the contract ---------------------------------------------------------------------------

    def test_parse_yields_at_least_min_events_from_fixture(self, provider_settings) -> None:
        events = self.events(provider_settings, self.fixture)
        assert len(events) >= self.min_events, f"{len(events)} events, expected {self.min_events}+"

    def test_parse_gives_equal_results_on_every_run(self, provider_settings) -> None:
        first = self.parse(provider_settings, self.fixture)
        assert first == self.parse(provider_settings, self.fixture)
        assert self.parse(provider_settings, self.broken_fixture) == self.parse(
            provider_settings, self.broken_fixture
        )

    def test_parse_opens_no_network_connection(
        self, provider_settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        attempts = block_network(monkeypatch)
        self.parse(provider_settings, self.fixture)
        self.parse(provider_settings, self.broken_fixture)
        assert not attempts, "parse must read only its source; downloading belongs in fetch"

    def test_event_ids_are_stable_uuids_of_provider_and_key(self, provider_settings) -> None:
        name = self.make_provider().name
        events = self.events(provider_settings, self.fixture)
        keys = [event.key for event in events]
        assert all(isinstance(key, str) and key for key in keys), "every event needs a key"
        assert len(set(keys)) == len(keys), "two items of one feed share a key (and so an id)"
        for event in events:
            row = normalise(name, provider_settings.zone, event)
            assert row["id"] == event_uuid(name, event.key)
            assert row["id"].version == 5
        again = [event.key for event in self.events(provider_settings, self.fixture)]
        assert again == keys, "keys must not depend on the run (no counters, clocks or randomness)"

    def test_broken_items_are_skipped_and_counted_while_the_rest_is_stored(
        self, provider_settings, contract_engine
    ) -> None:
        source = io.BytesIO(self.broken_fixture.read_bytes())
        report = ingest(self.entry(provider_settings), source, engine=contract_engine)
        assert report.skipped >= self.min_broken, "broken items must be counted as skipped"
        assert report.inserted >= 1, "the readable items of the broken fixture must be stored"
        assert all(reason.strip() for reason in report.skip_reasons)
        invalid = [
            i
            for i in self.parse(provider_settings, self.broken_fixture)
            if isinstance(i, InvalidItem)
        ]
        assert all(item.reason for item in invalid), "an InvalidItem says why"

    def test_unreadable_document_is_a_feed_error_and_keeps_stored_events(
        self, provider_settings, contract_engine
    ) -> None:
        if self.unreadable is None:
            pytest.skip("this provider reads every byte string as a feed")
        entry = self.entry(provider_settings)
        ingest(entry, io.BytesIO(self.fixture.read_bytes()), engine=contract_engine)
        before = self.stored_count(contract_engine)
        with pytest.raises(FeedError):
            ingest(entry, io.BytesIO(self.unreadable), engine=contract_engine)
        assert self.stored_count(contract_engine) == before

    def test_events_satisfy_the_search_contract(self, provider_settings, contract_engine) -> None:
        events = self.events(provider_settings, self.fixture)
        for event in events:
            try:
                normalise(self.make_provider().name, provider_settings.zone, event)
            except ValueError as exc:
                pytest.fail(f"event {event.key!r} of the good fixture cannot be served: {exc}")
        source = io.BytesIO(self.fixture.read_bytes())
        report = ingest(self.entry(provider_settings), source, engine=contract_engine)
        assert report.skipped == 0, f"the good fixture has skipped items: {report.skip_reasons}"
        with transaction(contract_engine) as session:
            rows = search_events(session=session, providers=[self.make_provider().name])
        assert len(rows) == len({event.key for event in events if event.on_sale})
        validator = event_summary_validator()
        for row in rows:
            summary = event_summary(row)
            errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(summary)]
            assert not errors, f"{summary} breaks EventSummary: {errors}"

    def test_fetch_stores_the_feed_served_at_its_url(
        self, contract_engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if not self.fetches_url:
            pytest.skip("this provider's fetch does not download its url")
        provider = self.make_provider()
        with serving(self.fixture.read_bytes()) as url:
            monkeypatch.setenv(provider.env_prefix + "URL", url)
            report = fetch_provider(self.entry(provider.load_settings()), engine=contract_engine)
        assert report.seen >= self.min_events
        assert report.bytes == len(self.fixture.read_bytes())

    def test_settings_are_documented(self) -> None:
        fields = self.make_provider().settings_class.model_fields
        undocumented = [
            name for name, field in fields.items() if not (field.description or "").strip()
        ]
        assert not undocumented, f"settings without a description: {undocumented}"

    def test_invalid_settings_stop_startup_naming_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        provider = self.make_provider()
        for key, value in self.invalid_settings_env.items():
            variable = provider.env_prefix + key
            with monkeypatch.context() as patch:
                patch.setenv(variable, value)
                with pytest.raises(ValidationError):
                    provider.load_settings()
                with pytest.raises(ConfigError, match=variable):
                    load_registry(
                        Settings(MARQUEE_PROVIDERS=[provider.name]),
                        extra_plugins={KIT_PLUGIN: OneProvider(provider)},
                        entry_point_group=None,
                    )

    def test_plugin_hook_registers_the_provider(self) -> None:
        if self.plugin is None:
            pytest.skip("set `plugin` to the module your entry point names")
        name = self.make_provider().name
        registry = load_registry(
            Settings(MARQUEE_PROVIDERS=[]),
            extra_plugins={"plugin-under-test": self.plugin},
            entry_point_group=None,
        )
        assert name in registry.entries, f"the plugin registers {sorted(registry.entries)}"
        assert isinstance(registry.entries[name].provider, type(self.make_provider()))
