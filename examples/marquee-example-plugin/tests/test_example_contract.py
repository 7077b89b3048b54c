"""The example plugin passes Marquee's provider contract kit, as any third-party provider should."""

from datetime import date
from pathlib import Path
from typing import ClassVar

from marquee_example_plugin import plugin
from marquee_example_plugin.plugin import ExampleJsonProvider

from core.contract import Provider
from core.contract_kit import ProviderContract

FIXTURES = Path(__file__).parent / "fixtures"


class TestExampleJsonContract(ProviderContract):
    fixture = FIXTURES / "events.json"
    broken_fixture = FIXTURES / "broken_events.json"
    min_events = 4
    min_broken = 4
    plugin = plugin
    settings_env: ClassVar[dict[str, str]] = {"TIMEZONE": "Europe/Madrid"}

    def make_provider(self) -> Provider:
        return ExampleJsonProvider()


def test_all_day_event_parses_as_dates_with_inclusive_end() -> None:
    provider = ExampleJsonProvider()
    source = (FIXTURES / "events.json").open("rb")
    fair = next(
        e for e in provider.parse(provider.load_settings(), source) if e.key == "fair-2026-08"
    )
    assert (fair.start, fair.end) == (date(2026, 8, 1), date(2026, 8, 3))
