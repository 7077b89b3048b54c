"""The one settings object: every process-wide knob, read from the environment and `.env`."""

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./marquee.db"


def comma_list(value: object) -> object:
    """`"a, B,,c"` -> `["a", "b", "c"]`: names from a comma-separated variable, trimmed and lower-cased.
    Anything that is not a string or a sequence is left for pydantic to reject."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple):
        return [name for name in (str(item).strip().lower() for item in value) if name]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    DATABASE_URL: str = DEFAULT_DATABASE_URL
    DATABASE_CONNECT_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=60)] = 3.0
    REDIS_URL: str | None = None
    MARQUEE_PROVIDERS: Annotated[list[str], NoDecode] = ["fever"]
    MARQUEE_BATCH_SIZE: Annotated[int, Field(ge=1, le=5000)] = 500
    MARQUEE_LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    MARQUEE_LOG_FORMAT: Literal["text", "json"] = "text"
    # Scheduling: retries of transient failures, the per-provider run lock, Celery's Redis keys.
    MARQUEE_RETRY_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=20)] = 4
    MARQUEE_RETRY_BACKOFF_SECONDS: Annotated[float, Field(gt=0, le=3600)] = 3.0
    MARQUEE_RETRY_BACKOFF_MAX_SECONDS: Annotated[float, Field(gt=0, le=86_400)] = 120.0
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
