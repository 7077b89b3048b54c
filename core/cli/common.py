"""What every `marquee` command shares: its exit codes, reading the settings, startup checks, and
how it says what it did (plain text, or JSON lines when MARQUEE_LOG_FORMAT=json)."""

import sys
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from core.errors import ConfigError
from core.logs import json_line
from core.plugins.registry import Registry, format_validation_error, load_registry
from core.settings import LogSettings, SettingFileError, Settings

EXIT_FAILED = 1  # the command ran and its work failed (a fetch, the database)
EXIT_CONFIG = 2  # the configuration cannot work; nothing was attempted


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid setting {format_validation_error('', exc)}") from exc
    except SettingFileError as exc:
        raise ConfigError(str(exc)) from exc
    except SettingsError as exc:  # e.g. a value that is not the JSON a list setting needs
        raise ConfigError(f"invalid setting: {exc}") from exc


def log_format() -> str:
    """The log format asked for, read on its own: even a command whose other settings are bad
    reports that in the format asked for (text when MARQUEE_LOG_FORMAT itself is bad)."""
    try:
        return LogSettings().MARQUEE_LOG_FORMAT
    except (ValidationError, SettingsError):
        return "text"


def say(text: str, *, json_mode: bool, **fields: Any) -> None:
    """A command's result on stdout: the text, or one JSON line carrying it and `fields`."""
    print(json_line("INFO", "marquee", text, **fields) if json_mode else text, flush=True)


def complain(text: str, *, json_mode: bool, **fields: Any) -> None:
    """What went wrong, on stderr: `marquee: text`, or one JSON line carrying it."""
    line = f"marquee: {text}"
    print(json_line("ERROR", "marquee", line, **fields) if json_mode else line, file=sys.stderr)


def check_startup(settings: Settings) -> Registry:
    """Providers and schema, checked before a long-running process starts its work: a bad
    configuration or a database behind the code stops it with one line (ConfigError)."""
    from core.retention.policy import policies
    from core.store.db import create_db_engine
    from core.store.migrate import require_current_schema

    registry = load_registry(settings)
    policies(settings, registry)  # stages out of order stop startup, naming the variables
    engine = create_db_engine(settings)
    try:
        require_current_schema(engine)
    finally:
        engine.dispose()
    return registry


def schema_problem() -> str | None:
    """Why the database cannot serve this code ("run `marquee migrate`"), if that is the reason a
    command failed on it; None when the schema is current or cannot be read."""
    from core.store.db import create_db_engine
    from core.store.migrate import require_current_schema

    try:
        engine = create_db_engine(load_settings())
    except ConfigError:
        return None
    try:
        require_current_schema(engine)
    except ConfigError as exc:
        return str(exc)
    except Exception:
        return None
    finally:
        engine.dispose()
    return None
