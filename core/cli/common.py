"""What every `marquee` command shares: its exit codes and reading the settings."""

from pydantic import ValidationError

from core.errors import ConfigError
from core.settings import Settings

EXIT_FAILED = 1  # the command ran and its work failed (a fetch, the database)
EXIT_CONFIG = 2  # the configuration cannot work; nothing was attempted


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        from core.registry import format_validation_error

        raise ConfigError(f"invalid setting {format_validation_error('', exc)}") from exc
