"""Errors that say what to do: a plugin named where a provider belongs, plugins that register
nothing yet, a database never migrated, secrets given as files and never shown."""

import json
from pathlib import Path

import pytest

from tests.core.cli.test_cli_foundation import SECRET_PLUGIN, assert_clean_failure, marquee


def test_naming_the_ical_plugin_as_a_provider_points_at_marquee_ical_feeds(tmp_path: Path) -> None:
    result = marquee(
        "serve",
        "--port",
        "0",
        MARQUEE_PROVIDERS="fever,ical",
        DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
    )

    assert_clean_failure(result, 2)
    assert "unknown provider(s) ical" in result.stderr
    assert "'ical' is a plugin, not a provider" in result.stderr
    assert "MARQUEE_ICAL_FEEDS is empty" in result.stderr


def test_fetching_the_ical_plugin_by_name_points_at_marquee_ical_feeds(tmp_path: Path) -> None:
    result = marquee("fetch", "ical", DATABASE_URL=f"sqlite:///{tmp_path}/x.db")

    assert_clean_failure(result, 2)
    assert "'ical' is a plugin, not a provider" in result.stderr
    assert "MARQUEE_ICAL_FEEDS" in result.stderr


def test_providers_lists_every_plugin_with_why_it_registers_nothing() -> None:
    text = marquee("providers")
    listing = marquee("providers", "--json")

    assert text.returncode == listing.returncode == 0, text.stderr + listing.stderr
    assert (
        "ical (marquee-events 0.1.0): registers no provider yet: no feeds configured" in text.stdout
    )
    assert "(MARQUEE_ICAL_FEEDS is empty)" in text.stdout
    plugins = {plugin["name"]: plugin for plugin in json.loads(listing.stdout)["plugins"]}
    assert plugins["ical"]["providers"] == []
    assert "MARQUEE_ICAL_FEEDS is empty" in plugins["ical"]["hint"]
    assert plugins["fever"]["providers"] == ["fever"]


def test_providers_lists_the_ical_feeds_once_configured() -> None:
    result = marquee(
        "providers",
        "--json",
        MARQUEE_ICAL_FEEDS="theatre",
        MARQUEE_THEATRE_URL="http://127.0.0.1:9/theatre.ics",
    )

    plugins = {plugin["name"]: plugin for plugin in json.loads(result.stdout)["plugins"]}
    assert plugins["ical"]["providers"] == ["theatre"]
    assert plugins["ical"]["description"].startswith("registers theatre: one provider per feed")


@pytest.mark.parametrize("command", [["fetch", "fever"], ["serve", "--port", "0"]])
def test_commands_on_an_unmigrated_database_say_run_marquee_migrate(
    command: list[str], tmp_path: Path
) -> None:
    result = marquee(
        *command,
        DATABASE_URL=f"sqlite:///{tmp_path / 'never-migrated.db'}",
        MARQUEE_FEVER_URL="http://127.0.0.1:9/feed",
    )

    assert_clean_failure(result, 2)
    assert "run `marquee migrate`" in result.stderr
    assert "no such table" not in result.stderr


def test_fetch_on_an_unmigrated_postgresql_database_says_run_marquee_migrate(
    postgres_url: str,
) -> None:
    import sqlalchemy as sa

    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    empty = f"{sa.make_url(postgres_url).database}_empty"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{empty}"'))
    try:
        url = sa.make_url(postgres_url).set(database=empty).render_as_string(hide_password=False)
        result = marquee(
            "fetch", "fever", DATABASE_URL=url, MARQUEE_FEVER_URL="http://127.0.0.1:9/"
        )
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{empty}" WITH (FORCE)'))
        admin.dispose()

    assert_clean_failure(result, 2)
    assert "run `marquee migrate`" in result.stderr


def write_vault_plugin(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    (plugins / "vaultplug-0.1.dist-info").mkdir(parents=True)
    (plugins / "vaultplug.py").write_text(SECRET_PLUGIN)
    (plugins / "vaultplug-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vaultplug\nVersion: 0.1\n"
    )
    (plugins / "vaultplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[marquee]\nvault = vaultplug\n"
    )
    return plugins


def test_secret_settings_from_files_are_used_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("hunter2-key\n")
    (tmp_path / "feed-url").write_text(
        "http://reader:hunter2-pw@127.0.0.1:9/feed?token=hunter2-t\n"
    )
    env = {
        "PYTHONPATH": str(write_vault_plugin(tmp_path)),
        "MARQUEE_PROVIDERS": "vault",
        "MARQUEE_VAULT_API_KEY_FILE": str(tmp_path / "api-key"),
        "MARQUEE_VAULT_URL_FILE": str(tmp_path / "feed-url"),
    }

    text = marquee("providers", **env)
    listing = marquee("providers", "--json", **env)

    assert text.returncode == listing.returncode == 0, text.stderr + listing.stderr
    assert "hunter2" not in text.stdout + listing.stdout + text.stderr
    vault = {item["name"]: item for item in json.loads(listing.stdout)["providers"]}["vault"]
    assert vault["settings"]["api_key"] == "********"
    assert vault["settings"]["url"] == "http://***:***@127.0.0.1:9/feed?token=***"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"MARQUEE_BATCH_SIZE": "7", "MARQUEE_BATCH_SIZE_FILE": "{dir}/batch"},
            "MARQUEE_BATCH_SIZE_FILE",
        ),
        (
            {"DATABASE_PASSWORD_FILE": "{dir}/missing"},
            "DATABASE_PASSWORD_FILE: cannot read {dir}/missing",
        ),
        (
            {"MARQUEE_FEVER_TIMEZONE_FILE": "{dir}/missing"},
            "MARQUEE_FEVER_TIMEZONE_FILE: cannot read",
        ),
    ],
)
def test_a_file_variable_that_cannot_be_used_stops_startup_naming_it(
    env: dict[str, str], named: str, tmp_path: Path
) -> None:
    (tmp_path / "batch").write_text("42\n")
    filled = {name: value.format(dir=tmp_path) for name, value in env.items()}

    result = marquee(
        "serve", "--port", "0", DATABASE_URL="postgresql://app@127.0.0.1:9/x", **filled
    )

    assert_clean_failure(result, 2)
    assert named.format(dir=tmp_path) in result.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_database_password_from_a_file_never_reaches_the_output(
    log_format: str, tmp_path: Path
) -> None:
    (tmp_path / "db-password").write_text("hunter2@db/pw\n")

    result = marquee(
        "fetch",
        "fever",
        DATABASE_URL="postgresql://app@127.0.0.1:9/marquee",  # nothing listens: it fails
        DATABASE_PASSWORD_FILE=str(tmp_path / "db-password"),
        MARQUEE_LOG_FORMAT=log_format,
    )

    assert result.returncode == 1, result.stderr
    assert "database unreachable" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert "hunter2%40db%2Fpw" not in result.stdout + result.stderr
