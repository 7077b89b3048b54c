"""Operator endpoints: liveness, readiness against a database that goes away and comes back,
and Prometheus metrics that read fetch figures from the shared database."""

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from api.app import create_app
from core.ingest.normalise import normalise
from core.plugins.contract import ParsedEvent
from core.settings import Settings
from core.store.db import transaction
from core.store.models import FetchRun
from core.store.upsert import upsert_events


class SwitchableProxy:
    """A TCP proxy to PostgreSQL that can be cut: while off it drops every connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.enabled = threading.Event()
        self.enabled.set()
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.enabled.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        self._cut(source, target)

    def _cut(self, *sockets: socket.socket) -> None:
        for sock in sockets:
            with self.lock:
                self.open.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def off(self) -> None:
        self.enabled.clear()
        with self.lock:
            cut = list(self.open)
        self._cut(*cut)

    def on(self) -> None:
        self.enabled.set()

    def stop(self) -> None:
        self.off()
        self.listener.close()


@pytest.fixture
def proxied_client(postgres_url: str) -> Iterator[tuple[TestClient, SwitchableProxy]]:
    target = sa.make_url(postgres_url)
    proxy = SwitchableProxy((target.host or "127.0.0.1", target.port or 5432))
    url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = create_app(Settings(DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT_SECONDS=2))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, proxy
    finally:
        app.state.engine.dispose()
        proxy.stop()


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_health_answers_ok_while_database_is_unreachable(proxied_client) -> None:
    client, proxy = proxied_client
    proxy.off()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ok"}, "error": None}


def test_ready_answers_503_while_database_is_down_and_200_once_back_without_restart(
    proxied_client,
) -> None:
    client, proxy = proxied_client
    assert client.get("/ready").status_code == 200

    proxy.off()
    down = client.get("/ready")
    assert down.status_code == 503
    assert down.json() == {
        "error": {"code": "database_unavailable", "message": "the event store is unreachable"},
        "data": None,
    }
    assert client.get("/ready").status_code == 503

    proxy.on()
    back = client.get("/ready")
    assert back.status_code == 200
    assert back.json() == {"data": {"status": "ready"}, "error": None}


def test_ready_answers_503_on_a_reachable_database_without_this_versions_schema(
    tmp_path,
) -> None:
    from core.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'behind.db'}"
    upgrade(url, "0001")
    app = create_app(Settings(DATABASE_URL=url))
    with TestClient(app, raise_server_exceptions=False) as client:
        behind = client.get("/ready")
        assert behind.status_code == 503
        assert behind.json()["error"]["code"] == "schema_outdated"
        upgrade(url)
        assert client.get("/ready").status_code == 200


def test_ready_stays_200_on_a_database_that_newer_code_already_migrated(tmp_path) -> None:
    from core.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'ahead.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with TestClient(create_app(Settings(DATABASE_URL=url))) as client:
        assert client.get("/ready").status_code == 200


def test_metrics_keep_request_figures_while_database_is_unreachable(proxied_client) -> None:
    client, proxy = proxied_client
    client.get("/health")
    proxy.off()
    samples = scrape(client)
    assert samples[("marquee_store_up", ())] == 0
    health = (("method", "GET"), ("route", "/health"), ("status", "200"))
    assert samples[("marquee_http_requests_total", health)] == 1
    proxy.on()
    assert scrape(client)[("marquee_store_up", ())] == 1


def test_metrics_label_requests_by_route_template_not_raw_path(client: TestClient) -> None:
    for _ in range(2):
        client.get("/events/00000000-0000-0000-0000-000000000001")
    client.get("/events/00000000-0000-0000-0000-000000000002")
    client.get("/no/such/page")
    samples = scrape(client)
    requests = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "marquee_http_requests_total"
    }
    template = (("method", "GET"), ("route", "/events/{event_id}"), ("status", "404"))
    assert requests[template] == 3
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert requests[unmatched] == 1
    assert not any("00000000" in value for labels in requests for _, value in labels)
    latency = (("method", "GET"), ("route", "/events/{event_id}"))
    assert samples[("marquee_http_request_duration_seconds_count", latency)] == 3


def test_metrics_label_searches_and_their_head_requests_by_route(client: TestClient) -> None:
    client.get("/search?starts_at=2021-01-01T00:00:00Z")
    client.get("/search?starts_at=2021-01-01T00:00:00Z")
    client.head("/search")
    samples = scrape(client)

    search = (("method", "GET"), ("route", "/search"), ("status", "200"))
    assert samples[("marquee_http_requests_total", search)] == 2
    head = (("method", "HEAD"), ("route", "/search"), ("status", "200"))
    assert samples[("marquee_http_requests_total", head)] == 1


def test_metrics_count_requests_per_app_not_per_process(settings, engine, registry) -> None:
    first = TestClient(create_app(settings, engine=engine, registry=registry))
    second = TestClient(create_app(settings, engine=engine, registry=registry))
    first.get("/health")
    first.get("/health")
    second.get("/health")
    health = (("method", "GET"), ("route", "/health"), ("status", "200"))
    assert scrape(first)[("marquee_http_requests_total", health)] == 2
    assert scrape(second)[("marquee_http_requests_total", health)] == 1


def _run(provider: str, outcome: str, seconds: float | None, **counts: int) -> FetchRun:
    started = datetime(2026, 1, 1, 12, tzinfo=UTC)
    finished = started + timedelta(seconds=seconds) if seconds is not None else None
    return FetchRun(
        provider=provider,
        trigger="schedule",
        started_at=started,
        finished_at=finished,
        outcome=outcome,
        **counts,
    )


def _event(key: str, *, on_sale: bool) -> dict:
    parsed = ParsedEvent(
        key=key, title=f"Show {key}", start=date(2026, 6, 1), end=None, on_sale=on_sale
    )
    return normalise("fever", ZoneInfo("Europe/Madrid"), parsed)


def test_metrics_report_fetch_runs_durations_and_events_recorded_by_workers(
    client: TestClient, engine: Engine
) -> None:
    with transaction(engine) as session:
        session.add_all(
            [
                _run("fever", "success", 2.0, inserted=3, updated=1, unchanged=5),
                _run("fever", "success", 4.5, inserted=0, updated=2),
                _run("fever", "failed", 1.0),
                _run("fever", "running", None),
                _run("ical", "skipped", 0.0),
            ]
        )
        rows = [_event("a", on_sale=True), _event("b", on_sale=True), _event("c", on_sale=False)]
        upsert_events(session, rows, now=datetime.now(UTC))

    samples = scrape(client)
    fever, ical = (("provider", "fever"),), (("provider", "ical"),)
    assert samples[("marquee_store_up", ())] == 1
    assert samples[("marquee_fetch_runs_total", (("outcome", "success"), *fever))] == 2
    assert samples[("marquee_fetch_runs_total", (("outcome", "failed"), *fever))] == 1
    assert samples[("marquee_fetch_runs_total", (("outcome", "skipped"), *ical))] == 1
    assert ("marquee_fetch_runs_total", (("outcome", "running"), *fever)) not in samples
    assert samples[("marquee_fetch_runs_in_progress", fever)] == 1
    success = (("outcome", "success"), *fever)
    assert samples[("marquee_fetch_duration_seconds_count", success)] == 2
    assert samples[("marquee_fetch_duration_seconds_sum", success)] == pytest.approx(6.5, abs=0.01)
    assert samples[("marquee_events_upserted_total", fever)] == 6
    assert samples[("marquee_events_stored", fever)] == 3
    assert samples[("marquee_events_searchable", fever)] == 2
    # The search API still answers in its own envelope beside the operator routes.
    assert client.get("/search").json()["error"] is None
