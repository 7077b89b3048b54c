"""Stages must be ordered hide <= archive <= purge, globally and once a provider's overrides are
mixed in; otherwise startup, `marquee retention` and a pass stop, naming the variables."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from core.cli.common import check_startup
from core.errors import ConfigError
from core.settings import Settings
from tests.core.retention.helpers import feed, fetch, marquee, retain, snapshot
from tests.support.feed_server import FeedServer


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"HIDE": "5", "ARCHIVE": "3"}, ("HIDE", "ARCHIVE")),
        ({"ARCHIVE": "30", "PURGE": "7"}, ("ARCHIVE", "PURGE")),
        ({"HIDE": "9", "PURGE": "8"}, ("HIDE", "PURGE")),  # archive unset: hide against purge
        ({"HIDE": "1", "ARCHIVE": "9", "PURGE": "8"}, ("ARCHIVE", "PURGE")),
    ],
)
def test_settings_refuse_stages_out_of_order_naming_both_variables(
    values: dict[str, str], named: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for stage, days in values.items():
        monkeypatch.setenv(f"MARQUEE_RETENTION_{stage}_AFTER_DAYS", days)

    with pytest.raises(ValidationError) as raised:
        Settings()

    message = str(raised.value)
    low, high = named
    assert f"MARQUEE_RETENTION_{low}_AFTER_DAYS={values[low]}" in message
    assert f"MARQUEE_RETENTION_{high}_AFTER_DAYS={values[high]}" in message


@pytest.mark.parametrize("values", [{"HIDE": "3", "ARCHIVE": "3", "PURGE": "3"}, {"PURGE": "0"}])
def test_settings_take_equal_stages_and_any_single_stage(
    values: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for stage, days in values.items():
        monkeypatch.setenv(f"MARQUEE_RETENTION_{stage}_AFTER_DAYS", days)

    settings = Settings()

    for stage, days in values.items():
        assert getattr(settings, f"MARQUEE_RETENTION_{stage}_AFTER_DAYS") == int(days)


@pytest.mark.parametrize("days", ["-1", "two"])
def test_settings_refuse_days_that_are_not_a_count(
    days: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", days)

    with pytest.raises(ValidationError, match="MARQUEE_RETENTION_HIDE_AFTER_DAYS"):
        Settings()


@pytest.fixture
def mixed_out_of_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fine globally and fine on its own, out of order once the override is mixed in."""
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "1")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "3")
    monkeypatch.setenv("MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS", "5")


MIXED = ("MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS=5", "MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS=3")


def test_startup_stops_on_a_provider_override_out_of_order_with_the_global_stage(
    mixed_out_of_order: None, settings: Settings
) -> None:
    with pytest.raises(ConfigError) as raised:
        check_startup(settings)

    for variable in MIXED:
        assert variable in str(raised.value)
    assert "fever" in str(raised.value)


def test_startup_takes_an_override_that_restores_the_order(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "5")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "6")
    monkeypatch.setenv("MARQUEE_FEVER_RETENTION_ARCHIVE_AFTER_DAYS", "9")

    assert "fever" in check_startup(Settings()).entries


def test_a_pass_changes_nothing_when_an_override_is_out_of_order(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, feed_server: FeedServer, archive_dir: Path
) -> None:
    fetch(monkeypatch, engine, feed_server, feed(1, 2))
    fetch(monkeypatch, engine, feed_server, feed(1))
    monkeypatch.setenv("MARQUEE_RETENTION_HIDE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS", "0")
    monkeypatch.setenv("MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS", "2")
    before = snapshot(engine)

    with pytest.raises(ConfigError, match="MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS=2"):
        retain(engine)

    assert snapshot(engine) == before


@pytest.mark.parametrize("command", [["retention"], ["retention", "--dry-run"], ["serve"]])
def test_commands_exit_with_a_config_error_naming_the_mixed_variables(
    command: list[str], tmp_path: Path
) -> None:
    # Stopped before anything touches the database (which does not even exist).
    result = marquee(
        *command,
        cwd=tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}",
        MARQUEE_RETENTION_HIDE_AFTER_DAYS="1",
        MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS="3",
        MARQUEE_FEVER_RETENTION_HIDE_AFTER_DAYS="5",
    )

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("marquee:")
    for variable in MIXED:
        assert variable in last
    assert not (tmp_path / "none.db").exists()


def test_retention_command_exits_with_a_config_error_for_global_stages_out_of_order(
    tmp_path: Path,
) -> None:
    result = marquee(
        "retention",
        cwd=tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}",
        MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS="30",
        MARQUEE_RETENTION_PURGE_AFTER_DAYS="7",
    )

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS=30" in result.stderr
    assert "MARQUEE_RETENTION_PURGE_AFTER_DAYS=7" in result.stderr
    assert "Traceback" not in result.stderr
