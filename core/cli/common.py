"""What every `marquee` command shares: its exit codes, reading the settings, startup checks."""

from pydantic import ValidationError

from core.errors import ConfigError
from core.plugins.registry import Registry, format_validation_error, load_registry
from core.settings import Settings

EXIT_FAILED = 1  # the command ran and its work failed (a fetch, the database)
EXIT_CONFIG = 2  # the configuration cannot work; nothing was attempted


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid setting {format_validation_error('', exc)}") from exc


def check_startup(settings: Settings) -> Registry:
    """Providers and schema, checked before a long-running process starts its work: a bad
    configuration or a database behind the code stops it with one line (ConfigError)."""
    from core.store.db import create_db_engine
    from core.store.migrate import require_current_schema

    registry = load_registry(settings)
    engine = create_db_engine(settings)
    try:
        require_current_schema(engine)
    finally:
        engine.dispose()
    return registry
