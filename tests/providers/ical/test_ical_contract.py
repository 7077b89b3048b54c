"""The iCalendar provider passes the same contract kit every third-party provider runs."""

from typing import ClassVar

import pytest

from core.plugins.contract import Provider
from marquee.testing import ProviderContract
from providers.ical import plugin
from providers.ical.plugin import IcalProvider
from tests.conftest import FIXTURES
from tests.providers.ical.helpers import NOW


class TestIcalContract(ProviderContract):
    fixture = FIXTURES / "ical" / "recurring.ics"
    broken_fixture = FIXTURES / "ical" / "broken.ics"
    min_events = 10
    min_broken = 9
    plugin = plugin
    settings_env: ClassVar[dict[str, str]] = {
        "URL": "http://127.0.0.1:9/venue.ics",
        "TIMEZONE": "Europe/Madrid",
    }
    invalid_settings_env: ClassVar[dict[str, str]] = {
        **ProviderContract.invalid_settings_env,
        "HORIZON_DAYS": "0",
        "PAST_DAYS": "-1",
        "MAX_OCCURRENCES": "0",
    }

    @pytest.fixture(autouse=True)
    def _one_feed(self, _contract_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
        """The plugin registers one provider per name in MARQUEE_ICAL_FEEDS."""
        monkeypatch.setenv("MARQUEE_ICAL_FEEDS", "venue")

    def make_provider(self) -> Provider:
        return IcalProvider("venue", clock=lambda: NOW)
