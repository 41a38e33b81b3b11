from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.checks.recording import record_outcome
from bot.core.clock import utcnow
from bot.domain import Environment, State
from bot.domain.outcomes import CheckOutcome, TokenOutcome
from bot.settings import load_settings
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import CheckResult, CheckRollup, StateChange
from storage.retention import HEALTHY_RAW_KEEP, HOURLY_KEEP, LONG_KEEP, RAW_KEEP, prune_history


async def _count(db: Database, model: type) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_pruning_keeps_rollups_and_the_latest_result(db: Database) -> None:
    settings = load_settings(brincr_scopes="brincr:category")
    async with db.transaction() as session:
        customer = await add_customer(
            NewCustomer(
                "12345678", "A", Environment.PRODUCTION, "11111111-1111-4111-8111-111111111111"
            ),
            session=session,
            state=State.PENDING,
        )
    now = utcnow()
    ages = [
        LONG_KEEP + timedelta(days=2),
        RAW_KEEP + timedelta(hours=5),
        RAW_KEEP + timedelta(hours=3),
        timedelta(hours=1),
    ]
    for age in ages:
        outcome = CheckOutcome(
            customer.id,
            now - age,
            State.HEALTHY,
            TokenOutcome.OK,
            ("brincr:category",),
            token_ms=50,
            probe_ms=40,
        )
        await record_outcome(db, outcome, settings, [])
    async with db.transaction() as session:
        session.add(
            StateChange(
                customer_id=customer.id,
                at=now - LONG_KEEP - timedelta(days=1),
                from_state="pending",
                to_state="healthy",
            )
        )
    assert await _count(db, CheckRollup) == 4

    report = await prune_history(db, now=now)

    assert report.results == 3 and report.rollups == 1 and report.state_changes >= 1
    assert await _count(db, CheckResult) == 1  # the newest stays
    assert await _count(db, CheckRollup) == 3  # counts survive the raw rows
    async with db.transaction() as session:
        kept = (await session.scalars(select(CheckRollup))).all()
    assert sum(r.checks for r in kept) == 3 and max(r.latency_ms_max for r in kept) == 90
    assert (await prune_history(db, now=now)).results == 0  # idempotent


async def _customer(db: Database, kvk: str = "23456789") -> int:
    async with db.transaction() as session:
        customer = await add_customer(
            NewCustomer(kvk, "B", Environment.PRODUCTION, f"22222222-2222-4222-8222-{kvk:0>12}"),
            session=session,
            state=State.PENDING,
        )
        return customer.id


async def _rollups(db: Database) -> list[tuple[datetime, int, int, int, int, str]]:
    async with db.transaction() as session:
        rows = await session.scalars(select(CheckRollup).order_by(CheckRollup.hour))
        return [
            (r.hour, r.checks, r.failures, r.latency_ms_sum, r.latency_ms_max, r.worst_state)
            for r in rows
        ]


def _totals(rows: list[tuple[datetime, int, int, int, int, str]]) -> tuple[int, int, int, int]:
    return (
        sum(r[1] for r in rows),
        sum(r[2] for r in rows),
        sum(r[3] for r in rows),
        max(r[4] for r in rows),
    )


async def test_hourly_rollups_older_than_a_week_fold_into_one_row_per_day(db: Database) -> None:
    customer_id = await _customer(db)
    now = datetime(2026, 11, 20, 13, 30, tzinfo=UTC)
    start = now.replace(hour=0, minute=0) - timedelta(days=10)
    async with db.transaction() as session:
        for h in range(10 * 24 + 13):
            failing = h == 30  # one bad hour on the second day
            session.add(
                CheckRollup(
                    customer_id=customer_id,
                    hour=start + timedelta(hours=h),
                    checks=4,
                    failures=2 if failing else 0,
                    latency_ms_sum=400 + h,
                    latency_ms_max=150 + h % 7,
                    worst_state=State.REVOKED if failing else State.HEALTHY,
                )
            )
    before = await _rollups(db)
    week_before = [r for r in before if r[0] >= now - timedelta(days=7)]

    report = await prune_history(db, now=now)

    after = await _rollups(db)
    cutoff = (now - HOURLY_KEEP).replace(hour=0, minute=0)  # 13 Nov 00:00
    folded = [r for r in after if r[0] < cutoff]
    assert [r[0] for r in folded] == [start + timedelta(days=d) for d in range(3)]
    assert all(r[1] == 96 for r in folded)
    assert folded[1][2] == 2 and folded[1][5] == State.REVOKED  # the bad hour survives
    assert folded[0][5] == State.HEALTHY
    assert _totals(after) == _totals(before)  # no check, failure or millisecond lost
    assert [r for r in after if r[0] >= cutoff] == [r for r in before if r[0] >= cutoff]
    assert [r for r in after if r[0] >= now - timedelta(days=7)] == week_before
    assert report.compacted == 3 * 24 and len(after) == len(before) - 3 * 23

    again = await prune_history(db, now=now + timedelta(hours=1))
    assert again.compacted == 0 and await _rollups(db) == after  # idempotent


async def test_compaction_moves_on_one_day_at_a_time(db: Database) -> None:
    customer_id = await _customer(db)
    now = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    start = now.replace(hour=0, minute=0) - timedelta(days=8)
    async with db.transaction() as session:
        for h in range(9 * 24):
            session.add(
                CheckRollup(
                    customer_id=customer_id, hour=start + timedelta(hours=h), checks=4,
                    failures=0, latency_ms_sum=100, latency_ms_max=30, worst_state="healthy",
                )
            )  # fmt: skip
    assert (await prune_history(db, now=now)).compacted == 24  # the 12th: wholly > 7 days old
    assert (await prune_history(db, now=now + timedelta(hours=1))).compacted == 24  # the 13th
    assert _totals(await _rollups(db))[0] == 9 * 24 * 4


async def test_healthy_raw_results_go_after_a_day_and_failures_after_two(db: Database) -> None:
    settings = load_settings(brincr_scopes="brincr:category")
    customer_id = await _customer(db)
    now = utcnow()
    cases = [
        (RAW_KEEP + timedelta(hours=2), State.FAILING),
        (HEALTHY_RAW_KEEP + timedelta(hours=2), State.HEALTHY),
        (HEALTHY_RAW_KEEP + timedelta(hours=1), State.UNKNOWN),
        (timedelta(hours=3), State.HEALTHY),
        (timedelta(hours=1), State.HEALTHY),
    ]
    for age, state in cases:
        outcome = CheckOutcome(
            customer_id, now - age, state, TokenOutcome.OK, ("brincr:category",), token_ms=5
        )
        await record_outcome(db, outcome, settings, [])

    report = await prune_history(db, now=now)

    async with db.transaction() as session:
        kept = (await session.scalars(select(CheckResult).order_by(CheckResult.checked_at))).all()
    assert [r.state for r in kept] == [State.UNKNOWN, State.HEALTHY, State.HEALTHY]
    assert report.results == 2
    assert _totals(await _rollups(db))[:2] == (5, 2)  # the rollups still count all five
