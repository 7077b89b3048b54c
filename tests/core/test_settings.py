"""The one settings object and the per-provider settings, read from the environment and `.env`:
an empty value means the default, `<NAME>_FILE` reads a value from a file."""

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import Field, ValidationError

from core.plugins.contract import Provider, ProviderSettings
from core.settings import DEFAULT_DATABASE_URL, SettingFileError, Settings
from core.store.db import create_db_engine
from providers.fever.plugin import DEFAULT_URL, FeverProvider
from providers.ical.settings import feed_names


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


# ---- empty means unset ------------------------------------------------------------------------


class PagedSettings(ProviderSettings):
    page_size: int = Field(default=100, ge=1)


class PagedProvider(Provider):
    name = "paged"
    settings_class = PagedSettings


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_empty_values_mean_the_default_for_marquee_and_provider_settings(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = ["MARQUEE_PROVIDERS", "MARQUEE_BATCH_SIZE", "MARQUEE_FEVER_TIMEZONE"]
    empty += ["MARQUEE_PAGED_PAGE_SIZE", "DATABASE_URL", "MARQUEE_LOG_FORMAT"]
    if where == ".env":
        (tmp_path / ".env").write_text("".join(f"{name}=\n" for name in empty))
    else:
        for name in empty:
            monkeypatch.setenv(name, "")

    settings = Settings()

    assert settings.MARQUEE_PROVIDERS == ["fever"]
    assert settings.MARQUEE_BATCH_SIZE == 500
    assert settings.DATABASE_URL == DEFAULT_DATABASE_URL
    assert settings.MARQUEE_LOG_FORMAT == "text"
    assert FeverProvider().load_settings().timezone == "UTC"
    assert PagedProvider().load_settings().page_size == 100  # type: ignore[attr-defined]


def test_empty_ical_feeds_means_no_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARQUEE_ICAL_FEEDS", "")

    assert feed_names() == []


# ---- <NAME>_FILE ------------------------------------------------------------------------------


def test_file_variable_gives_any_setting_its_content_without_one_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "batch").write_text("42\n")
    (tmp_path / "zone").write_text("Europe/Madrid\n")
    (tmp_path / "pages").write_text("7")
    (tmp_path / "feeds").write_text("theatre, cinema\n")
    monkeypatch.setenv("MARQUEE_BATCH_SIZE_FILE", str(tmp_path / "batch"))
    monkeypatch.setenv("MARQUEE_FEVER_TIMEZONE_FILE", str(tmp_path / "zone"))
    monkeypatch.setenv("MARQUEE_ICAL_FEEDS_FILE", str(tmp_path / "feeds"))
    # In .env as well as in the environment.
    (tmp_path / ".env").write_text(f"MARQUEE_PAGED_PAGE_SIZE_FILE={tmp_path / 'pages'}\n")

    assert Settings().MARQUEE_BATCH_SIZE == 42
    assert FeverProvider().load_settings().timezone == "Europe/Madrid"
    assert PagedProvider().load_settings().page_size == 7  # type: ignore[attr-defined]
    assert feed_names() == ["theatre", "cinema"]


def test_file_variable_strips_only_one_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "password").write_text("  spaced pass \n\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example/marquee")
    monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(tmp_path / "password"))

    assert Settings().DATABASE_PASSWORD.get_secret_value() == "  spaced pass \n"  # type: ignore[union-attr]


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_giving_a_setting_and_its_file_variable_is_an_error_naming_both(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "batch").write_text("42\n")
    monkeypatch.setenv("MARQUEE_BATCH_SIZE_FILE", str(tmp_path / "batch"))
    if where == ".env":
        (tmp_path / ".env").write_text("MARQUEE_BATCH_SIZE=7\n")
    else:
        monkeypatch.setenv("MARQUEE_BATCH_SIZE", "7")

    with pytest.raises(SettingFileError, match="MARQUEE_BATCH_SIZE and MARQUEE_BATCH_SIZE_FILE"):
        Settings()


def test_unreadable_file_variable_is_an_error_naming_variable_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-secret"
    monkeypatch.setenv("MARQUEE_FEVER_URL_FILE", str(missing))

    with pytest.raises(SettingFileError) as raised:
        FeverProvider().load_settings()

    assert str(raised.value).startswith(f"MARQUEE_FEVER_URL_FILE: cannot read {missing}")


# ---- DATABASE_PASSWORD ------------------------------------------------------------------------

AWKWARD_PASSWORD = "p@ss/w:rd%25?#&"


def test_database_password_goes_into_the_url_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example:5432/marquee")
    monkeypatch.setenv("DATABASE_PASSWORD", AWKWARD_PASSWORD)

    url = sa.make_url(Settings().DATABASE_URL)

    assert (url.username, url.password, url.host, url.port) == (
        "app",
        AWKWARD_PASSWORD,
        "db.example",
        5432,
    )
    assert url.database == "marquee"
    assert AWKWARD_PASSWORD not in repr(Settings())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///./marquee.db", "not a PostgreSQL URL"),
        ("postgresql://app:other@db.example/marquee", "DATABASE_URL has a password"),
    ],
)
def test_database_password_is_refused_where_it_cannot_go(
    url: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATABASE_PASSWORD", "secret")

    with pytest.raises(ValidationError, match=message):
        Settings()


def test_database_password_from_a_file_connects_to_postgresql_as_a_role_holding_it(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = f"marquee_pw_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        quoted = AWKWARD_PASSWORD.replace("'", "''")  # CREATE ROLE takes no bound parameters
        connection.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{quoted}'"))
    try:
        (tmp_path / "db-password").write_text(AWKWARD_PASSWORD + "\n")
        url = sa.make_url(postgres_url).set(username=role, password=None)
        monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
        monkeypatch.setenv("DATABASE_PASSWORD_FILE", str(tmp_path / "db-password"))

        engine = create_db_engine(Settings())
        try:
            with engine.connect() as connection:
                assert connection.execute(sa.text("SELECT current_user")).scalar() == role
                # The password reached the driver intact (the test server trusts 127.0.0.1, so
                # it is not what let us in): libpq holds exactly the file's content.
                assert connection.connection.dbapi_connection.info.password == AWKWARD_PASSWORD  # type: ignore[union-attr]
        finally:
            engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()
