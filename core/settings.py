"""The one settings object: every process-wide knob, read from the environment and `.env`.

Every settings class of Marquee and of its plugins follows the same three rules (`EnvSettings`):
the environment wins over `.env`; an empty value (`NAME=`) means unset, so the default; and
`NAME_FILE=path` gives NAME the content of that file (Docker and Kubernetes secrets).
"""

from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

DEFAULT_DATABASE_URL = "sqlite:///./marquee.db"
# Retention's stages, in the order they apply; each a number of days of inactivity, or unset (off).
RETENTION_STAGES = ("hide", "archive", "purge")
RetentionDays = Annotated[int | None, Field(ge=0, le=36_500)]


def retention_variable(prefix: str, stage: str) -> str:
    """`MARQUEE_` + `hide` -> MARQUEE_RETENTION_HIDE_AFTER_DAYS (a provider's: MARQUEE_FEVER_…)."""
    return f"{prefix}RETENTION_{stage.upper()}_AFTER_DAYS"


def check_retention_order(days: dict[str, tuple[int | None, str]]) -> None:
    """Stages that are set must be ordered hide <= archive <= purge; `days` maps each stage to its
    value and the variable it came from. ValueError names the variables out of order."""
    set_stages = [(stage, *days[stage]) for stage in RETENTION_STAGES if days[stage][0] is not None]
    for (_, low, low_name), (_, high, high_name) in pairwise(set_stages):
        if low > high:
            raise ValueError(
                f"{low_name}={low} is more than {high_name}={high}: retention stages must be "
                "ordered hide <= archive <= purge"
            )


FILE_SUFFIX = "_FILE"


def comma_list(value: object) -> object:
    """`"a, B,,c"` -> `["a", "b", "c"]`: names from a comma-separated variable, trimmed and lower-cased.
    Anything that is not a string or a sequence is left for pydantic to reject."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        return [name for name in (str(item).strip().lower() for item in value) if name]
    return value


class SettingFileError(SettingsError):
    """A `<NAME>_FILE` variable that cannot be used; the message names the variable."""


def read_value_file(variable: str, path: str) -> str:
    """The content of the file `variable` names, one trailing newline stripped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingFileError(f"{variable}: cannot read {path}: {reason}") from None
    return text.removesuffix("\n").removesuffix("\r")


class FileValueSource(EnvSettingsSource):
    """`<NAME>_FILE=path`, in the environment or `.env`, for any setting NAME: the file's content
    is the value. Setting NAME too is refused, naming both."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        env: PydanticBaseSettingsSource,
        dotenv: PydanticBaseSettingsSource,
    ) -> None:
        assert isinstance(env, EnvSettingsSource)
        super().__init__(
            settings_cls,
            case_sensitive=env.case_sensitive,
            env_prefix=env.env_prefix,
            env_prefix_target=env.env_prefix_target,
            env_ignore_empty=True,
            env_parse_none_str=env.env_parse_none_str,
            env_parse_enums=env.env_parse_enums,
        )
        # Both places a variable can be given, the environment winning as it does for values.
        self.env_vars = {**getattr(dotenv, "env_vars", {}), **env.env_vars}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        for key, env_name, is_complex in self._extract_field_info(field, field_name):
            file_variable = env_name + self._apply_case_sensitive(FILE_SUFFIX)
            path = self.env_vars.get(file_variable)
            if path is None:
                continue
            if self.env_vars.get(env_name) is not None:
                raise SettingFileError(
                    f"{env_name.upper()} and {file_variable.upper()} are both set: set only one"
                )
            return read_value_file(file_variable.upper(), path) or None, key, is_complex
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        try:
            return super().__call__()
        except SettingsError as exc:
            # pydantic-settings wraps what a source raises in a message that names no variable.
            if isinstance(exc.__cause__, SettingFileError):
                raise exc.__cause__ from None
            raise


class EnvSettings(BaseSettings):
    """Settings read the Marquee way: environment over `.env`, empty means unset, `NAME_FILE`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = FileValueSource(settings_cls, env_settings, dotenv_settings)
        return init_settings, files, env_settings, dotenv_settings, file_secret_settings


class LogSettings(EnvSettings):
    """How a process logs: read first, on its own, so even a bad setting is reported in the format
    asked for."""

    model_config = SettingsConfigDict(case_sensitive=True)

    MARQUEE_LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    MARQUEE_LOG_FORMAT: Literal["text", "json"] = "text"


class Settings(LogSettings):
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    # Inserted into DATABASE_URL, escaped: a password with "@" or "/" needs no URL-encoding.
    DATABASE_PASSWORD: SecretStr | None = None
    DATABASE_CONNECT_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=60)] = 3.0
    REDIS_URL: str | None = None
    MARQUEE_PROVIDERS: Annotated[list[str], NoDecode] = ["fever"]
    MARQUEE_BATCH_SIZE: Annotated[int, Field(ge=1, le=5000)] = 500
    # Scheduling: retries of transient failures, the per-provider run lock, Celery's Redis keys.
    MARQUEE_RETRY_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=20)] = 4
    MARQUEE_RETRY_BACKOFF_SECONDS: Annotated[float, Field(gt=0, le=3600)] = 3.0
    MARQUEE_RETRY_BACKOFF_MAX_SECONDS: Annotated[float, Field(gt=0, le=86_400)] = 120.0
    # A run's lease on its provider, renewed every third of it while the run is alive.
    MARQUEE_LEASE_SECONDS: Annotated[float, Field(ge=3, le=600)] = 30.0
    # The longest one run may hold its provider; past it the run gives its lock up.
    MARQUEE_LOCK_TIMEOUT_SECONDS: Annotated[int, Field(ge=10, le=86_400)] = 900
    MARQUEE_REDIS_KEY_PREFIX: Annotated[str, Field(max_length=100)] = "marquee:"
    MARQUEE_CELERY_QUEUE: Annotated[str, Field(min_length=1, max_length=100)] = "marquee"
    # Days of fetch_run history kept per provider; older runs are pruned after each run.
    MARQUEE_RUN_HISTORY_DAYS: Annotated[int, Field(ge=1, le=3650)] = 30

    # --- Serving: the /search response cache and how fresh it is kept ---------------------------
    # Each API process reads the data version at most this often; no answer is older than this.
    MARQUEE_DATA_VERSION_CHECK_SECONDS: Annotated[float, Field(gt=0, le=60)] = 1.0
    # Rendered /search answers kept per API process (0: no cache), and their total size.
    MARQUEE_SEARCH_CACHE_ENTRIES: Annotated[int, Field(ge=0, le=1_000_000)] = 1024
    MARQUEE_SEARCH_CACHE_BYTES: Annotated[int, Field(ge=0, le=1 << 34)] = 64 * 1024 * 1024

    # --- Retention: each stage off unless set; days of inactivity (0: not in the latest feed) ----
    MARQUEE_RETENTION_HIDE_AFTER_DAYS: RetentionDays = None
    MARQUEE_RETENTION_ARCHIVE_AFTER_DAYS: RetentionDays = None
    MARQUEE_RETENTION_PURGE_AFTER_DAYS: RetentionDays = None
    # Where archive files are written (one compressed JSON Lines file per archiving run).
    MARQUEE_ARCHIVE_DIR: Path = Path("archive")
    # Events per statement (and per transaction) of a retention stage.
    MARQUEE_RETENTION_BATCH_SIZE: Annotated[int, Field(ge=1, le=100_000)] = 5000
    # How often `marquee run` and Celery beat apply retention (when a stage is set).
    MARQUEE_RETENTION_INTERVAL_SECONDS: Annotated[int, Field(ge=60, le=30 * 86_400)] = 86_400

    @field_validator("DATABASE_URL")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        """Accept the usual `postgresql://` form and route it through psycopg 3."""
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value.removeprefix(prefix)
        if not value.startswith(("postgresql+psycopg://", "sqlite://")):
            raise ValueError("must be a postgresql://… or sqlite:///… URL")
        return value

    @model_validator(mode="after")
    def _insert_database_password(self) -> "Settings":
        if self.DATABASE_PASSWORD is None:
            return self
        url = sa.make_url(self.DATABASE_URL)
        if url.get_backend_name() != "postgresql":
            raise ValueError("DATABASE_PASSWORD is set, but DATABASE_URL is not a PostgreSQL URL")
        if url.password is not None:
            raise ValueError("DATABASE_PASSWORD is set and DATABASE_URL has a password: give one")
        password = self.DATABASE_PASSWORD.get_secret_value()
        self.DATABASE_URL = url.set(password=password).render_as_string(hide_password=False)
        return self

    @field_validator("REDIS_URL")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://host:port/db URL")
        return value

    @field_validator("MARQUEE_PROVIDERS", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> object:
        names = comma_list(value)
        return list(dict.fromkeys(names)) if isinstance(names, list) else names

    @model_validator(mode="after")
    def _check_retention_order(self) -> "Settings":
        check_retention_order(
            {
                stage: (
                    getattr(self, retention_variable("MARQUEE_", stage)),
                    retention_variable("MARQUEE_", stage),
                )
                for stage in RETENTION_STAGES
            }
        )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
