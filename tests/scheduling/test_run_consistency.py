"""The run record stays true while processes race: scrapes beside prunes, runs beside live runs."""

from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client.core import Metric
from sqlalchemy.engine import Engine

from core import run_history
from core.db import transaction
from core.metrics import StoreCollector
from tests.scheduling.conftest import insert_run


def fetch_run_counts(metrics: list[Metric]) -> dict[str, float]:
    return {
        sample.labels["outcome"]: sample.value
        for family in metrics
        if family.name == "marquee_fetch_runs"
        for sample in family.samples
        if sample.labels["provider"] == "fever"
    }


def test_scrape_keeps_run_counters_when_a_prune_commits_between_its_reads(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for days_ago in (40, 39):
        insert_run(engine, "success", days_ago=days_ago)
    insert_run(engine, "failed", days_ago=38)
    pruned: list[int] = []

    def prune_after_first_read(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Another process's run prunes right after the scrape's first read of the run record.
        if pruned or "fetch_run" not in statement:
            return
        pruned.append(0)
        with transaction(engine) as session:
            pruned[0] = run_history.prune(session=session, provider="fever", keep_days=30)

    sa.event.listen(engine, "after_cursor_execute", prune_after_first_read)
    try:
        metrics = list(StoreCollector(engine, timeout_seconds=10).collect())
    finally:
        sa.event.remove(engine, "after_cursor_execute", prune_after_first_read)

    assert pruned == [2]  # the oldest success and the failure; the last success is kept
    assert fetch_run_counts(metrics) == {"success": 2, "failed": 1}
    # And the next scrape, after the prune, says the same.
    again = list(StoreCollector(engine, timeout_seconds=10).collect())
    assert fetch_run_counts(again) == {"success": 2, "failed": 1}
