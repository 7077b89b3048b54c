"""Fixtures of the retention tests: where archives go, and the API built after a test set its
environment."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.plugins.registry import load_registry
from core.settings import Settings


@pytest.fixture
def archive_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "archive"
    monkeypatch.setenv("MARQUEE_ARCHIVE_DIR", str(directory))
    return directory


@pytest.fixture
def api(engine: Engine, archive_dir: Path) -> Iterator[Callable[[], TestClient]]:
    """Build the API app on demand (after the test set its environment), on the test's engine."""
    from api.app import create_app

    clients: list[TestClient] = []

    def build() -> TestClient:
        settings = Settings()
        app = create_app(settings, engine=engine, registry=load_registry(settings))
        clients.append(TestClient(app, raise_server_exceptions=False).__enter__())
        return clients[-1]

    yield build
    for client in clients:
        client.__exit__(None, None, None)
