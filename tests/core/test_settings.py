"""The one settings object and the per-provider settings, read from the environment and `.env`."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import DEFAULT_DATABASE_URL, Settings
from providers.fever.plugin import DEFAULT_URL, FeverProvider


def test_settings_default_to_a_sqlite_file_and_the_fever_provider() -> None:
    settings = Settings()

    assert settings.DATABASE_URL == DEFAULT_DATABASE_URL
    assert settings.DATABASE_URL.startswith("sqlite:///")
    assert settings.MARQUEE_PROVIDERS == ["fever"]
    assert settings.REDIS_URL is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:secret@db.example:5432/marquee",
        "postgres://user:secret@db.example:5432/marquee",
        "postgresql+psycopg2://user:secret@db.example:5432/marquee",
    ],
)
def test_settings_route_the_usual_postgresql_url_through_psycopg3(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)

    assert Settings().DATABASE_URL == "postgresql+psycopg://user:secret@db.example:5432/marquee"


def test_settings_refuse_an_unsupported_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/marquee")

    with pytest.raises(ValidationError, match="postgresql://"):
        Settings()


def test_settings_split_providers_list_trimming_case_and_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_PROVIDERS", " Fever, ical ,fever,,")

    assert Settings().MARQUEE_PROVIDERS == ["fever", "ical"]


def test_settings_read_the_dotenv_file_of_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MARQUEE_BATCH_SIZE=42\nMARQUEE_FEVER_TIMEZONE=Europe/Madrid\n")

    assert Settings().MARQUEE_BATCH_SIZE == 42
    assert FeverProvider().load_settings().timezone == "Europe/Madrid"


def test_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("MARQUEE_BATCH_SIZE=42\n")
    monkeypatch.setenv("MARQUEE_BATCH_SIZE", "7")

    assert Settings().MARQUEE_BATCH_SIZE == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MARQUEE_BATCH_SIZE", "0"),
        ("MARQUEE_LOG_LEVEL", "LOUD"),
        ("REDIS_URL", "localhost:6379"),
    ],
)
def test_settings_refuse_bad_values(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError, match=name):
        Settings()


def test_fever_settings_default_to_the_partner_feed_in_utc() -> None:
    settings = FeverProvider().load_settings()

    assert settings.url == DEFAULT_URL == "https://provider.code-challenge.feverup.com/api/events"
    assert settings.timezone == "UTC"
    assert settings.max_bytes >= 1024


def test_fever_settings_read_marquee_fever_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_URL", "http://127.0.0.1:9/feed")
    monkeypatch.setenv("MARQUEE_FEVER_TIMEZONE", "Europe/Madrid")
    monkeypatch.setenv("MARQUEE_FEVER_MAX_BYTES", "2048")
    monkeypatch.setenv("MARQUEE_FEVER_TIMEOUT_SECONDS", "2.5")

    settings = FeverProvider().load_settings()

    assert (settings.url, settings.timezone) == ("http://127.0.0.1:9/feed", "Europe/Madrid")
    assert (settings.max_bytes, settings.timeout_seconds) == (2048, 2.5)
    assert settings.zone.key == "Europe/Madrid"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("URL", "ftp://example.com/feed", "http"),
        ("MAX_BYTES", "10", "greater than or equal"),
        ("TIMEOUT_SECONDS", "0", "greater than"),
    ],
)
def test_fever_settings_refuse_bad_values_with_a_clear_message(
    name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"MARQUEE_FEVER_{name}", value)

    with pytest.raises(ValidationError, match=message):
        FeverProvider().load_settings()
