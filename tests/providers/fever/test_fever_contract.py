"""The built-in Fever provider passes the same contract kit every third-party provider runs."""

from typing import ClassVar

from core.plugins.contract import Provider
from marquee.testing import ProviderContract
from providers.fever import plugin
from providers.fever.plugin import FeverProvider
from tests.conftest import FIXTURES


class TestFeverContract(ProviderContract):
    fixture = FIXTURES / "fever" / "response_1.xml"
    broken_fixture = FIXTURES / "fever" / "invalid_items.xml"
    min_events = 3
    plugin = plugin
    settings_env: ClassVar[dict[str, str]] = {"TIMEZONE": "Europe/Madrid"}

    def make_provider(self) -> Provider:
        return FeverProvider()
