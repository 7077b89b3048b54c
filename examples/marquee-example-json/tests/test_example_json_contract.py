"""Example Json events feed passes Marquee's provider contract kit, and reads its feed's own rules."""

import tomllib
from datetime import date
from pathlib import Path
from typing import ClassVar

from marquee import Provider
from marquee.testing import ProviderContract

from marquee_example_json import plugin
from marquee_example_json.plugin import ExampleJsonProvider

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"


class TestExampleJsonContract(ProviderContract):
    fixture = FIXTURES / "feed.json"
    broken_fixture = FIXTURES / "broken_feed.json"
    min_events = 4
    min_broken = 4
    plugin = plugin
    settings_env: ClassVar[dict[str, str]] = {"TIMEZONE": "Europe/Madrid"}

    def make_provider(self) -> Provider:
        return ExampleJsonProvider()


def test_all_day_event_parses_as_dates_with_inclusive_end() -> None:
    provider = ExampleJsonProvider()
    with (FIXTURES / "feed.json").open("rb") as source:
        events = list(provider.parse(provider.load_settings(), source))
    fair = next(event for event in events if event.key == "fair-2026-08")
    assert (fair.start, fair.end) == (date(2026, 8, 1), date(2026, 8, 3))


def test_sold_out_event_is_parsed_as_not_on_sale() -> None:
    provider = ExampleJsonProvider()
    with (FIXTURES / "feed.json").open("rb") as source:
        events = {event.key: event for event in provider.parse(provider.load_settings(), source)}
    assert events["jazz-2026-07-01"].on_sale
    assert not events["quartet-2026-07-15"].on_sale


def test_pyproject_declares_the_marquee_entry_point() -> None:
    project = tomllib.loads((HERE.parent / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["marquee"] == {"example_json": "marquee_example_json.plugin"}
