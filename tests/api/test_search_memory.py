"""A search with no bounds streams its answer: eight at once over tens of thousands of events raise
the server's peak RSS by a few megabytes, not by eight answers' worth, and every answer is complete
and the same.

The peak is the server's own high-water mark (VmHWM, reset when it exec'd): the rusage wait4 gives
counts the forked copy of this test process before the exec, which is larger than the server."""

import hashlib
import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.support.serving import marquee_serve

EVENTS = 40_000
FULL_RANGE = 8
BOUND_MB = 100

POSTGRES_ROWS = f"""
INSERT INTO event (id, provider, external_id, title, start_date, start_time, end_date, end_time,
                   starts_at, ends_at, min_price, max_price, on_sale, ever_on_sale,
                   first_seen_at, updated_at)
SELECT md5(i::text)::uuid, 'fever', i::text, 'Event number ' || i,
       (t)::date, (t)::time, (t + interval '1 hour')::date, (t + interval '1 hour')::time,
       t AT TIME ZONE 'UTC', (t + interval '1 hour') AT TIME ZONE 'UTC', 10.5, 20.25, true, true,
       now(), now()
FROM generate_series(1, {EVENTS}) AS i, LATERAL (SELECT timestamp '2020-01-01' + i * interval '10 minutes') AS s(t)
"""
SQLITE_ROWS = f"""
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {EVENTS})
INSERT INTO event (id, provider, external_id, title, start_date, start_time, end_date, end_time,
                   starts_at, ends_at, min_price, max_price, on_sale, ever_on_sale,
                   first_seen_at, updated_at)
SELECT lower(hex(randomblob(16))), 'fever', i, 'Event number ' || i,
       date('2020-01-01', '+' || (i * 600) || ' seconds'),
       time('2020-01-01', '+' || (i * 600) || ' seconds') || '.000000',
       date('2020-01-01', '+' || (i * 600 + 3600) || ' seconds'),
       time('2020-01-01', '+' || (i * 600 + 3600) || ' seconds') || '.000000',
       datetime('2020-01-01', '+' || (i * 600) || ' seconds') || '.000000',
       datetime('2020-01-01', '+' || (i * 600 + 3600) || ' seconds') || '.000000',
       10.5, 20.25, 1, 1, datetime('now') || '.000000', datetime('now') || '.000000'
FROM n
"""


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


@pytest.mark.timeout(240)
def test_eight_full_range_searches_at_once_stay_within_a_memory_bound(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text(SQLITE_ROWS if engine.dialect.name == "sqlite" else POSTGRES_ROWS)
        )
    env = {"DATABASE_URL": database_url, "MARQUEE_LOG_LEVEL": "WARNING"}
    # A narrow search warms the process: imports, pools, statements.
    narrow = "/search?starts_at=2020-06-01T00:00:00Z&ends_at=2020-06-02T00:00:00Z"
    with marquee_serve(tmp_path, env, ready_path=narrow) as served:
        before = memory_mb(served.process.pid, "VmRSS")
        downloads = [
            subprocess.Popen(
                ["curl", "-s", "--max-time", "180", f"{served.base}/search"],
                stdout=subprocess.PIPE,
            )
            for _ in range(FULL_RANGE)
        ]
        digests = {hashlib.sha256(d.communicate()[0]).hexdigest() for d in downloads}
        last = httpx.get(f"{served.base}/search", timeout=120)
        peak = memory_mb(served.process.pid, "VmHWM")

    assert last.status_code == 200
    assert len(last.json()["data"]["events"]) == EVENTS
    assert digests == {hashlib.sha256(last.content).hexdigest()}  # eight complete, equal answers
    assert peak - before <= BOUND_MB, f"peak {peak:.0f} MB, {before:.0f} MB before the searches"
