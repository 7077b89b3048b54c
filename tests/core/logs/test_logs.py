"""Log lines and operator output never show a URL's password or the values of its query."""

import json
import logging
from collections.abc import Iterator

import pytest

from core.logs import configure_logging, redact
from core.plugins.registry import load_registry
from core.settings import Settings


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "url = http://user:pw@127.0.0.1:1/feed?token=abc",
            "url = http://***:***@127.0.0.1:1/feed?token=***",
        ),
        ("GET https://h.test/feed?token=abc&x=1 ok", "GET https://h.test/feed?token=***&x=*** ok"),
        ("https://h.test/f?flag&empty=&k=v#part", "https://h.test/f?flag&empty=&k=***#part"),
        ("postgresql+psycopg://app:p@ss@db:5432/x", "postgresql+psycopg://***:***@db:5432/x"),
        ('{"url": "http://h.test/a?k=v"}', '{"url": "http://h.test/a?k=***"}'),
        # Redis's usual form: a password with no user.
        ("redis://:secretpw@redis:6379/0", "redis://***:***@redis:6379/0"),
        # What is not a secret stays readable: a bare user name, a path, text outside URLs.
        ("postgresql://postgres@127.0.0.1/db", "postgresql://postgres@127.0.0.1/db"),
        ("http://h.test/users/@me?page=2", "http://h.test/users/@me?page=***"),
        ("limit=10 and offset=5", "limit=10 and offset=5"),
    ],
)
def test_redact_masks_url_passwords_and_query_values(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_log_line_masks_token_in_url_query(
    log_format: str,
    root_logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MARQUEE_LOG_FORMAT", log_format)
    configure_logging(Settings())

    logging.getLogger("marquee.test").warning(
        "fetching %s", "https://feeds.test/e?token=s3cret", extra={"url": "http://a:b@h/?key=k3y"}
    )

    line = capsys.readouterr().err.strip()
    assert "s3cret" not in line and "k3y" not in line and ":b@" not in line
    if log_format == "json":
        entry = json.loads(line)
        assert entry["message"] == "fetching https://feeds.test/e?token=***"
        assert entry["url"] == "http://***:***@h/?key=***"
    else:
        assert line.endswith(
            "fetching https://feeds.test/e?token=*** url=http://***:***@h/?key=***"
        )


def test_provider_settings_shown_to_operators_mask_url_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARQUEE_FEVER_URL", "http://u:p@127.0.0.1:1/feed?token=abc")

    shown = load_registry(Settings()).get("fever").masked_settings()

    assert shown["url"] == "http://***:***@127.0.0.1:1/feed?token=***"
