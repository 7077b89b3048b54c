"""/docs works offline: Swagger UI's page, scripts and styles all come from Marquee itself, and a
real browser with every non-loopback host unreachable renders the /search operation."""

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.store.migrate import upgrade
from tests.core.scheduling.conftest import stop_process, wait_for
from tests.support.serving import MARQUEE, free_port

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_this_server(client: TestClient, page: str) -> None:
    html = client.get(page).text

    assert client.get(page).headers["content-type"].startswith("text/html")
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    sources += re.findall(r"""url: *["']([^"']+)["']""", html)
    assert sources, html
    assert not [url for url in sources if "://" in url or url.startswith("//")], sources
    for url in sources:
        assert client.get(url).status_code == 200, url


@pytest.fixture
def served_docs(tmp_path: Path) -> Iterator[str]:
    database = tmp_path / "marquee.db"
    upgrade(f"sqlite:///{database}")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "MARQUEE_FEVER_URL": "http://127.0.0.1:9/feed",
    }
    process = subprocess.Popen(
        [MARQUEE, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return process.poll() is not None

    try:
        wait_for(answers, timeout=30, what="marquee serve")
        assert process.poll() is None, "marquee serve exited"
        yield base
    finally:
        stop_process(process)


def test_docs_render_the_search_operation_in_a_browser_without_internet(
    served_docs: str, tmp_path: Path
) -> None:
    assert shutil.which(CHROMIUM), (
        "chromium is missing: `make test` installs it (scripts/ensure-services)"
    )
    closed_port = free_port()  # nothing listens: a proxy that answers nobody
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--proxy-server=http://127.0.0.1:{closed_port}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            f"{served_docs}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'class="swagger-ui"' in dom, dom[:2000]
    assert re.search(r'class="opblock-summary-path"[^>]*data-path="/search"', dom), dom[-3000:]
