"""bench/cost_curve.py's seeding on PostgreSQL: what PostgreSQL generates equals what the
bot's own recording path writes for the same checks, and the daily rollups it generates
equal what the real retention job folds (the benchmark's database size stands on this)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg

from bench.cost_curve import fold_from, seed, validate
from bench.db_size import _prune
from storage.db import Database
from tests.conftest import scratch_postgres


def test_generated_history_equals_the_real_paths() -> None:
    with scratch_postgres("brincr_cost_curve") as url:
        line, _ = seed(url, 60, 6)  # validates the generated rows against the real path
        report = asyncio.run(_prune(Database(url), line.now))
        assert report.compacted == 60 * 24  # one hourly day of every customer folded
        validate(url, line, [1, 11, 21], 60, folded=True)
        with psycopg.connect(url) as conn:
            hourly = conn.execute(
                "SELECT count(DISTINCT hour) FROM check_rollups WHERE hour >= %s",
                (fold_from(line),),
            ).fetchone()
            kept = conn.execute("SELECT count(*) FROM check_results").fetchone()
        assert hourly is not None and kept is not None
        hours = int((line.now - fold_from(line)) / timedelta(hours=1))
        assert hourly[0] == hours - 24 + 1  # the folded day: one row at its 00:00
        assert kept[0] == 60 * 96  # the last day's healthy results; the older hour pruned
