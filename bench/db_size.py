"""Database size benchmark: 30 days of 10,000 customers at 15-minute checks, on SQLite.

Builds the steady state the retention rules leave (``storage.retention``): raw ``check_results``
for the last ``RAW_KEEP`` (plus the hour the hourly retention job may lag behind), hourly
``check_rollups`` for the whole period, a few ``state_changes`` per customer. The newest
simulated day of ``--real-customers`` customers goes through the real recording path
(``bot.checks.recording.record_outcomes``); every other row is bulk-inserted with the same values,
and the two are compared row by row before anything is measured. Then ``prune_history``
runs as the scheduler's retention job would, the file is VACUUMed and its size reported::

    .venv/bin/python bench/db_size.py --customers 10000 --days 30

``seed_history`` is reused by ``bench/ack_latency.py`` for its database.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, insert
from sqlalchemy.engine import Connection

from bench import provenance
from bot.checks.recording import record_outcomes
from bot.domain import Environment, State
from bot.domain.outcomes import CheckOutcome, TokenOutcome
from bot.settings import load_settings
from storage.db import Database, sync_url
from storage.migrate import upgrade
from storage.models import Customer
from storage.retention import RAW_KEEP, prune_history

SCOPES = ("brincr:category", "brincr:country")  # as bench/sweep.py's stand-in approves them
INTERVAL = timedelta(minutes=15)
PER_HOUR = 4
TARGET_MB = 500
CHUNK = 100_000
RESULT_COLUMNS = (
    "customer_id, checked_at, state, token_outcome, required_scopes, granted_scopes, "
    "missing_scopes, probe_status, token_ms, probe_ms, error_code, error_text"
)
Row = tuple[Any, ...]
ROLLUP_COLUMNS = "customer_id, hour, checks, failures, latency_ms_sum, latency_ms_max, worst_state"


def stamp(value: datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite (naive UTC, microseconds always)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class Timeline:
    """Check ``slot`` of customer ``cid`` happens at ``start + slot × 15 min + offset(cid)``;
    the offset (< 15 min) spreads the fleet over the interval like the scheduler does."""

    def __init__(self, now: datetime, days: int) -> None:
        self.now = now
        self.start = now - timedelta(days=days)
        self.slots = days * 24 * PER_HOUR

    @staticmethod
    def offset(cid: int) -> timedelta:
        return timedelta(seconds=(cid * 89) % 900)

    def at(self, cid: int, slot: int) -> datetime:
        return self.start + slot * INTERVAL + self.offset(cid)

    def hour(self, slot: int) -> datetime:
        return self.start + timedelta(hours=slot // PER_HOUR)

    @staticmethod
    def latency(cid: int, slot: int) -> tuple[int, int]:
        """(token_ms, probe_ms) of one check: deterministic, 80–199 ms in all."""
        total = 80 + (cid * 31 + slot * 17) % 120
        return total * 3 // 5, total - total * 3 // 5

    def outcome(self, cid: int, slot: int) -> CheckOutcome:
        token_ms, probe_ms = self.latency(cid, slot)
        return CheckOutcome(
            cid, self.at(cid, slot), State.HEALTHY, TokenOutcome.OK, SCOPES,
            granted_scopes=SCOPES, probe_status=200, token_ms=token_ms, probe_ms=probe_ms,
        )  # fmt: skip

    def result_row(self, cid: int, slot: int) -> Row:
        token_ms, probe_ms = self.latency(cid, slot)
        scopes = " ".join(SCOPES)
        at = stamp(self.at(cid, slot))
        return (cid, at, "healthy", "ok", scopes, scopes, "", 200, token_ms, probe_ms, None, None)

    def rollup_row(self, cid: int, hour_index: int) -> Row:
        totals = [sum(self.latency(cid, hour_index * PER_HOUR + q)) for q in range(PER_HOUR)]
        hour = stamp(self.start + timedelta(hours=hour_index))
        return (cid, hour, PER_HOUR, 0, sum(totals), max(totals), "healthy")


def _bulk(conn: Connection, table: str, columns: str, rows: Iterator[Row]) -> int:
    marks = ", ".join("?" for _ in columns.split(","))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"
    total = 0
    while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
        conn.exec_driver_sql(sql, chunk)
        total += len(chunk)
    return total


def seed_customers(conn: Connection, count: int, line: Timeline) -> list[int]:
    since = line.start
    rows = [
        {
            "id": cid,
            "kvk": f"{10_000_000 + cid}",
            "name": f"Klant {cid} B.V.",
            "environment": Environment.PRODUCTION.value,
            "tenant_id": str(uuid.UUID(int=cid)),
            "account_manager": None,
            "created_at": since,
            "state": State.PENDING.value,
            "state_since": since,
            "required_scopes": "",
            "granted_scopes": "",
            "missing_scopes": "",
            "consecutive_failures": 0,
            "next_check_at": since,
        }
        for cid in range(1, count + 1)
    ]
    conn.execute(insert(Customer), rows)
    return list(range(1, count + 1))


def _results(line: Timeline, ids: list[int], slots: range, skip: set[int]) -> Iterator[Row]:
    for slot in slots:  # time-major, as the sweep writes them
        for cid in ids:
            if not (cid in skip and slot >= line.slots - 24 * PER_HOUR):
                yield line.result_row(cid, slot)


def _rollups(line: Timeline, ids: list[int], skip: set[int]) -> Iterator[Row]:
    hours = line.slots // PER_HOUR
    for hour in range(hours):
        for cid in ids:
            if not (cid in skip and hour >= hours - 24):
                yield line.rollup_row(cid, hour)


def _state_changes(line: Timeline, ids: list[int], skip: set[int]) -> Iterator[Row]:
    """Created as pending, healthy after its first check; one in ten flapped through
    ``unknown`` once (a Visma outage)."""
    for cid in ids:
        yield (cid, stamp(line.start), None, "pending", None)
        if cid in skip:
            continue
        yield (cid, stamp(line.at(cid, 0)), "pending", "healthy", None)
        if cid % 10 == 0:
            outage = line.at(cid, line.slots // 2)
            yield (cid, stamp(outage), "healthy", "unknown", "timeout: token request timed out")
            yield (cid, stamp(outage + INTERVAL), "unknown", "healthy", None)


def _finish_customers(conn: Connection, line: Timeline) -> None:
    last = stamp(line.at(0, line.slots - 1))
    conn.exec_driver_sql(
        "UPDATE customers SET state = 'healthy', state_since = ?, required_scopes = ?, "
        "granted_scopes = ?, last_check_at = ?, next_check_at = ?, "
        "last_result_id = (SELECT max(id) FROM check_results r WHERE r.customer_id = customers.id)",
        (stamp(line.start), " ".join(SCOPES), " ".join(SCOPES), last, stamp(line.now)),
    )


def bulk_history(url: str, line: Timeline, ids: list[int], real: set[int]) -> dict[str, int]:
    """Every row but the newest day of the ``real`` customers, as the bot would have them."""
    engine = create_engine(sync_url(url))
    raw_from = line.slots - int((RAW_KEEP + timedelta(hours=1)) / INTERVAL)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        counts = {
            "check_results": _bulk(
                conn, "check_results", RESULT_COLUMNS,
                _results(line, ids, range(raw_from, line.slots), real),
            ),
            "check_rollups": _bulk(
                conn, "check_rollups", ROLLUP_COLUMNS, _rollups(line, ids, real)
            ),
            "state_changes": _bulk(
                conn, "state_changes", "customer_id, at, from_state, to_state, reason",
                _state_changes(line, ids, real),
            ),
        }  # fmt: skip
        _finish_customers(conn, line)
    engine.dispose()
    return counts


async def record_real_day(url: str, line: Timeline, real: list[int]) -> int:
    """The newest simulated day of ``real`` customers through the bot's own recording path."""
    settings = load_settings(brincr_scopes=" ".join(SCOPES), database_url=url)
    db = Database(url)
    slots = range(line.slots - 24 * PER_HOUR, line.slots)
    outcomes = [line.outcome(cid, slot) for slot in slots for cid in real]
    for start in range(0, len(outcomes), 500):  # CheckService's batch size
        await record_outcomes(db, outcomes[start : start + 500], settings, [])
    await db.close()
    return len(outcomes)


def validate(path: str, line: Timeline, real: list[int]) -> None:
    """The real path's rows equal what the bulk generator makes for the same checks."""
    with sqlite3.connect(path) as conn:
        for cid in real[:3]:
            got = conn.execute(
                f"SELECT {RESULT_COLUMNS} FROM check_results WHERE customer_id = ? "
                "AND checked_at >= ? ORDER BY checked_at",
                (cid, stamp(line.now - timedelta(days=1))),
            ).fetchall()
            want = [line.result_row(cid, s) for s in range(line.slots - 96, line.slots)]
            assert got == want, f"check_results differ for customer {cid}: {got[0]} {want[0]}"
            got = conn.execute(
                f"SELECT {ROLLUP_COLUMNS} FROM check_rollups WHERE customer_id = ? "
                "AND hour >= ? ORDER BY hour",
                (cid, stamp(line.now - timedelta(days=1))),
            ).fetchall()
            hours = line.slots // PER_HOUR
            want = [line.rollup_row(cid, h) for h in range(hours - 24, hours)]
            assert got == want, f"check_rollups differ for customer {cid}: {got[:1]} {want[:1]}"


def seed_history(url: str, customers: int, days: int, real_customers: int) -> Timeline:
    """A migrated SQLite database at ``url`` with ``days`` of history; returns its timeline
    (the database's "now" is the current hour)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    line = Timeline(now, days)
    upgrade(url)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        ids = seed_customers(conn, customers, line)
    engine.dispose()
    real = ids[:: max(1, len(ids) // real_customers)][:real_customers] if real_customers else []
    asyncio.run(record_real_day(url, line, real))
    bulk_history(url, line, ids, set(real))
    if real:
        validate(url.removeprefix("sqlite:///"), line, real)
    return line


def table_counts(path: str) -> dict[str, int]:
    tables = ("customers", "check_results", "check_rollups", "state_changes")
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def table_sizes(path: str) -> dict[str, float]:
    """MB per table, its indexes included (empty when SQLite lacks the dbstat table)."""
    with sqlite3.connect(path) as conn:
        try:
            rows = conn.execute(
                "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d "
                "JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name ORDER BY 2 DESC"
            ).fetchall()
        except sqlite3.OperationalError:
            return {}
    return {name: size / 1_000_000 for name, size in rows if size >= 1_000_000}


def vacuum(path: str) -> float:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    return Path(path).stat().st_size / 1_000_000


def pairs(values: dict[str, int] | dict[str, float], unit: str = "") -> str:
    return " ".join(
        f"{k}={v:.0f}{unit}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
    )


def main(customers: int, days: int, real_customers: int, keep: str | None) -> None:
    provenance.announce(provenance.NONE)
    with tempfile.TemporaryDirectory() as tmp:
        path = keep or f"{tmp}/size.db"
        url = f"sqlite:///{path}"
        started = time.perf_counter()
        line = seed_history(url, customers, days, real_customers)
        seeded = time.perf_counter() - started
        before, before_rows = vacuum(path), table_counts(path)
        started = time.perf_counter()
        report = asyncio.run(_prune(Database(url), line.now))
        pruned = time.perf_counter() - started
        size, counts, sizes = vacuum(path), table_counts(path), table_sizes(path)
    print(f"customers={customers} days={days} interval=15m real_path_customers={real_customers}")
    print(f"before: seconds={seeded:.0f} size={before:.0f}MB {pairs(before_rows)}")
    print(f"retention: prune_seconds={pruned:.1f} {report}")
    print(f"after: {pairs(counts)}")
    print(f"tables: {pairs(sizes, 'MB')}")
    verdict = "met" if size <= TARGET_MB else f"missed by {size - TARGET_MB:.0f}MB"
    print(f"db_size={size:.0f}MB target<={TARGET_MB}MB {verdict}")


async def _prune(db: Database, now: datetime) -> object:
    try:
        return await prune_history(db, now=now)
    finally:
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--real-customers", type=int, default=100)
    parser.add_argument("--keep", help="write the database here instead of a temporary file")
    args = parser.parse_args()
    main(args.customers, args.days, args.real_customers, args.keep)
