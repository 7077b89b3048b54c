"""The monitoring kit under ops/: Prometheus alert rules checked and unit-tested by promtool, and a
Grafana dashboard and rules that name only metrics `/metrics` really exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from core.plugins.registry import Registry
from core.scheduling.context import build_context
from core.scheduling.job import run_fetch
from core.settings import Settings
from core.store.models import Trigger
from tests.conftest import fixture_bytes
from tests.support.feed_server import Answer, FeedServer

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "ops" / "prometheus"
GRAFANA = ROOT / "ops" / "grafana"
DASHBOARD = json.loads((GRAFANA / "dashboards" / "marquee.json").read_text())
METRIC = re.compile(r"\bmarquee_[a-z0-9_]+\b")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("promtool"), (
        "promtool is missing: `make test` installs it (Debian prometheus)"
    )
    return subprocess.run(
        ["promtool", *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False
    )


def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def rules() -> list[dict]:
    return [
        rule
        for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]


def test_every_alert_has_a_unit_test() -> None:
    tested = {
        case["alertname"]
        for test in yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert {rule["alert"] for rule in rules()} == tested


def test_the_rules_cover_failing_providers_stale_providers_and_long_held_locks() -> None:
    names = {rule["alert"] for rule in rules()}
    assert {
        "MarqueeProviderFailingRepeatedly",
        "MarqueeProviderNoRecentSuccess",
        "MarqueeRunLockHeldTooLong",
    } <= names


def dashboard_expressions() -> list[str]:
    return [
        target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])
    ] + [DASHBOARD["templating"]["list"][0]["definition"]]


def test_dashboard_shows_what_operators_watch() -> None:
    titles = " | ".join(panel["title"].lower() for panel in DASHBOARD["panels"])
    for topic in (
        "by outcome",
        "failures",
        "last success age",
        "duration",
        "upserted",
        "stored",
        "request rate by route",
        "latency",
    ):
        assert topic in titles, topic


def test_dashboard_reads_the_provisioned_prometheus_data_source() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    uids = {source["uid"] for source in provisioned}
    used = {panel["datasource"]["uid"] for panel in DASHBOARD["panels"] if "datasource" in panel}
    assert used == uids == {"marquee-prometheus"}
    dashboards = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "marquee.yml").read_text()
    )
    assert dashboards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def exported_families(client: TestClient) -> set[str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {family.name for family in text_string_to_metric_families(response.text)}


def family_of(sample: str, families: set[str]) -> str | None:
    if sample in families:
        return sample
    for suffix in SUFFIXES:
        if sample.endswith(suffix) and sample.removesuffix(suffix) in families:
            return sample.removesuffix(suffix)
    return None


def test_every_metric_the_dashboard_and_rules_name_is_exported(
    settings: Settings,
    engine: Engine,
    registry: Registry,
    feed_server: FeedServer,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed_server.serve(
        "/fever", fixture_bytes("fever", "response_1.xml"), Answer(b"down", status=503)
    )
    monkeypatch.setenv("MARQUEE_FEVER_URL", feed_server.url("/fever"))
    context = build_context(Settings(), engine=engine)
    for _ in range(2):  # a success, then a failure
        run_fetch(context, "fever", trigger=Trigger.CLI, retry=False)
    client.get("/search")

    families = exported_families(client)
    named = {
        name
        for expr in dashboard_expressions() + [rule["expr"] for rule in rules()]
        for name in METRIC.findall(expr)
    }

    assert named, "no metric found in the dashboard or rules: the pattern is broken"
    assert not [name for name in sorted(named) if family_of(name, families) is None], families
    response = client.get("/metrics").text
    assert 'marquee_fetch_interval_seconds{provider="fever"} 60.0' in response
    last = re.search(
        r'marquee_fetch_last_success_timestamp_seconds\{provider="fever"\} (\S+)', response
    )
    assert last and float(last.group(1)) > 1.6e9
