"""The real `marquee` console script, run as an operator would: env vars in, words and exit codes out."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.providers.fever.feeds import FEED_PATH, fever_body
from tests.support.feed_server import Answer, FeedServer
from tests.support.serving import MARQUEE

SECRET_PLUGIN = """
from pydantic import SecretStr
from core.plugins.contract import Provider, ProviderSettings
from core.plugins.hookspecs import hookimpl


class VaultSettings(ProviderSettings):
    api_key: SecretStr | None = None
    password: str | None = None


class VaultProvider(Provider):
    name = "vault"
    settings_class = VaultSettings
    secret_settings = frozenset({"password"})

    def parse(self, settings, source):
        return iter(())


@hookimpl
def register_providers():
    return [VaultProvider()]
"""


def marquee(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MARQUEE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    # Log lines may precede it; the last line is the operator's message.
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(("marquee:", "fetch of")), result.stderr


def test_migrate_creates_the_schema_on_a_fresh_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    result = marquee("migrate", DATABASE_URL=url)

    assert result.returncode == 0, result.stderr
    assert "migrated" in result.stdout
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert {"event", "fetch_run"} <= set(sa.inspect(connection).get_table_names())
    engine.dispose()


def test_fetch_prints_counts_of_each_response_and_exits_0(
    database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.serve(FEED_PATH, fever_body("response_1.xml"), fever_body("response_2.xml"))

    first = marquee("fetch", "fever", DATABASE_URL=database_url, MARQUEE_FEVER_URL=url)
    second = marquee("fetch", "fever", DATABASE_URL=database_url, MARQUEE_FEVER_URL=url)

    assert first.returncode == 0, first.stderr
    assert "fever: 3 inserted, 0 updated, 0 unchanged, 0 skipped" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "fever: 0 inserted, 1 updated, 1 unchanged, 1 skipped" in second.stdout
    assert "skipped 444/1642" in second.stdout


def test_fetch_json_reports_counts_of_an_unchanged_refetch(
    database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.serve(FEED_PATH, fever_body("response_3.xml"))
    marquee("fetch", "fever", DATABASE_URL=database_url, MARQUEE_FEVER_URL=url)

    result = marquee("fetch", "fever", "--json", DATABASE_URL=database_url, MARQUEE_FEVER_URL=url)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["inserted"], report["updated"], report["unchanged"], report["skipped"]) == (
        0,
        0,
        2,
        1,
    )


def test_fetch_exits_nonzero_with_message_when_feed_answers_503(
    database_url: str, feed_server: FeedServer
) -> None:
    url = feed_server.serve(FEED_PATH, Answer(b"down for maintenance", 503))

    result = marquee("fetch", "fever", DATABASE_URL=database_url, MARQUEE_FEVER_URL=url)

    assert_clean_failure(result, 1)
    assert "fetch of fever failed" in result.stderr and "HTTP 503" in result.stderr


def test_fetch_exits_nonzero_with_message_when_feed_is_unreachable(database_url: str) -> None:
    url = "http://127.0.0.1:9/api/events"  # discard port: nothing listens

    result = marquee("fetch", "fever", DATABASE_URL=database_url, MARQUEE_FEVER_URL=url)

    assert_clean_failure(result, 1)
    assert "connection failed" in result.stderr


def test_fetch_of_unknown_provider_exits_2_naming_the_registered_ones(tmp_path: Path) -> None:
    result = marquee("fetch", "nope", DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")

    assert_clean_failure(result, 2)
    assert "'nope'" in result.stderr and "fever" in result.stderr


@pytest.mark.parametrize("command", [["providers"], ["fetch", "fever"], ["serve", "--port", "0"]])
def test_unknown_name_in_marquee_providers_stops_startup_with_exit_2(
    command: list[str], tmp_path: Path
) -> None:
    result = marquee(
        *command, MARQUEE_PROVIDERS="fever,evenbrite", DATABASE_URL=f"sqlite:///{tmp_path}/x.db"
    )

    assert_clean_failure(result, 2)
    assert "MARQUEE_PROVIDERS" in result.stderr and "evenbrite" in result.stderr
    assert "registered: " in result.stderr and "fever" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("MARQUEE_FEVER_TIMEZONE", "Mars/Olympus"), ("DATABASE_URL", "mysql://root@db/marquee")],
)
def test_invalid_setting_stops_startup_naming_the_variable(name: str, value: str) -> None:
    result = marquee("providers", **{name: value})

    assert_clean_failure(result, 2)
    assert name in result.stderr


def test_providers_lists_fever_enabled_with_its_settings() -> None:
    result = marquee("providers", "--json", MARQUEE_FEVER_TIMEZONE="Europe/Madrid")

    assert result.returncode == 0, result.stderr
    listing = {item["name"]: item for item in json.loads(result.stdout)["providers"]}
    fever = listing["fever"]
    assert fever["enabled"] is True
    assert fever["distribution"] == "marquee-events"
    assert fever["settings"]["url"] == "https://provider.code-challenge.feverup.com/api/events"
    assert fever["settings"]["timezone"] == "Europe/Madrid"


def test_providers_masks_secret_settings_of_a_plugin(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    (plugins / "vaultplug-0.1.dist-info").mkdir(parents=True)
    (plugins / "vaultplug.py").write_text(SECRET_PLUGIN)
    (plugins / "vaultplug-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vaultplug\nVersion: 0.1\n"
    )
    (plugins / "vaultplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[marquee]\nvault = vaultplug\n"
    )
    env = {
        "PYTHONPATH": str(plugins),
        "MARQUEE_PROVIDERS": "fever,vault",
        "MARQUEE_VAULT_API_KEY": "hunter2-key",
        "MARQUEE_VAULT_PASSWORD": "hunter2-password",
        "MARQUEE_VAULT_TIMEZONE": "Europe/Madrid",
    }

    text = marquee("providers", **env)
    listing = marquee("providers", "--json", **env)

    assert text.returncode == listing.returncode == 0, text.stderr + listing.stderr
    assert "hunter2" not in text.stdout + listing.stdout
    vault = {item["name"]: item for item in json.loads(listing.stdout)["providers"]}["vault"]
    assert vault["enabled"] is True and vault["distribution"] == "vaultplug"
    assert vault["settings"]["api_key"] == vault["settings"]["password"] == "********"
    assert vault["settings"]["timezone"] == "Europe/Madrid"
    assert "vault (enabled; plugin vault from vaultplug 0.1)" in text.stdout
