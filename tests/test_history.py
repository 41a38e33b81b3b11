from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.clock import utcnow
from bot.domain import Environment, State
from bot.health import CheckOutcome, TokenOutcome
from bot.history import LONG_KEEP, RAW_KEEP, prune_history
from bot.recording import record_outcome
from bot.settings import load_settings
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import CheckResult, CheckRollup, StateChange


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
