"""The fleet-wide claim budget: any number of workers on one database claim together at most
what one worker would per tick window, and their overdue checks follow one another over the
next window instead of running side by side (bench/upstream_flatness.py --workers 2)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from bot.checks import scheduler as scheduling
from bot.checks.scheduler import Claim, window_start
from bot.composition import Bot, build_bot
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import ClaimBudget, Customer
from storage.scheduling import open_budget, spend_budget
from tests.harness import SCOPES, bot_settings, eventually

TICK = 3.0  # CHECK_INTERVAL=90s
BUDGET = 10  # a tick's share of 60 customers is 2 (x 1.5 = 3): at least 10


@pytest.fixture
async def workers(
    database_url: str, sim: Simulator, slack: FakeSlack
) -> AsyncIterator[tuple[Bot, Bot]]:
    """Two bots (not started: the tests drive their schedulers) as two workers on one
    database, with 60 linked customers due in an hour."""
    settings = bot_settings(database_url, sim, slack, check_interval="90s")
    a = build_bot(settings, worker_id="worker-a")
    b = build_bot(settings, worker_id="worker-b")
    later = utcnow() + timedelta(hours=1)
    async with a.db.transaction() as session:
        for i in range(60):
            tenant = f"00000000-0000-4000-8000-{i:012d}"
            sim.approve(tenant, "production", list(SCOPES))
            new = NewCustomer(f"{52000000 + i}", f"Klant {i}", Environment.PRODUCTION, tenant)
            await add_customer(new, session=session, state=State.PENDING)
        await session.execute(update(Customer).values(next_check_at=later))
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def _overdue(bot: Bot, count: int) -> None:
    """Make ``count`` more customers (none claimed yet) overdue by a minute."""
    async with bot.db.transaction() as session:
        waiting = Customer.claimed_by.is_(None) & (Customer.next_check_at > utcnow())
        query = select(Customer.id).where(waiting).order_by(Customer.id).limit(count)
        ids = list(await session.scalars(query))
        overdue = utcnow() - timedelta(minutes=1)
        await session.execute(
            update(Customer).where(Customer.id.in_(ids)).values(next_check_at=overdue)
        )


def _one_budget(claims: list[Claim], window: datetime) -> None:
    """The claims took the window's budget once, together, each its own places in it."""
    ids = [c.id for claim in claims for c in claim.claimed]
    assert len(ids) == len(set(ids)) == BUDGET, [len(claim.claimed) for claim in claims]
    assert {claim.limit for claim in claims} == {BUDGET}
    assert {claim.budget.window_start for claim in claims} == {window}
    places = sorted((c.budget.claimed, c.budget.claimed + len(c.claimed)) for c in claims)
    assert places[0][0] == 0 and places[-1][1] == BUDGET, places
    assert all(end == start for (_, end), (start, _) in itertools.pairwise(places)), places


def _recorded(bot: Bot, plans: dict[str, dict[int, float]]) -> Callable[..., dict[int, float]]:
    """``bot``'s scheduler's plan, recording what it planned under its worker id."""
    planned = bot.scheduler.plan

    def plan(claim: Claim, now: datetime, clock: float) -> dict[int, float]:
        plans[bot.scheduler.worker] = planned(claim, now, clock)
        return plans[bot.scheduler.worker]

    return plan


async def test_two_workers_together_claim_no_more_than_the_budget_per_window(
    workers: tuple[Bot, Bot],
) -> None:
    a, b = workers
    await _overdue(a, 60)  # a restart's catch-up: the whole fleet overdue
    assert a.scheduler.tick == TICK
    now = utcnow()
    # both workers' ticks at once, twice each: they queue on the budget, not on each other's
    # customers, and together take the window's budget once
    claims = await asyncio.gather(*(w.scheduler._claim(now) for w in (a, b, a, b)))
    _one_budget(claims, window_start(now, TICK))
    # the next window: the budget again, counted from 0
    later = now + timedelta(seconds=TICK)
    claims = await asyncio.gather(*(w.scheduler._claim(later) for w in (b, a, b, a)))
    _one_budget(claims, window_start(later, TICK))
    # a worker whose clock is behind shares the newer window: it never resets it
    late = await a.scheduler._claim(now)
    assert (late.budget.window_start, late.budget.claimed, late.claimed) == (
        window_start(later, TICK), BUDGET, []
    )  # fmt: skip


async def test_the_budget_row_is_made_when_missing_and_moves_only_forward(db: Database) -> None:
    now = utcnow()
    first, second = window_start(now, TICK), window_start(now, TICK) + timedelta(seconds=TICK)
    async with db.transaction() as session:
        await session.execute(delete(ClaimBudget))  # the migration made it; a claim does too
    async with db.transaction() as session:
        assert tuple(await open_budget(session=session, window_start=first)) == (first, 0)
        await spend_budget(4, session=session)
    async with db.transaction() as session:
        assert tuple(await open_budget(session=session, window_start=first)) == (first, 4)
        await spend_budget(3, session=session)
    async with db.transaction() as session:  # an older window (a clock behind): no reset
        older = first - timedelta(seconds=TICK)
        assert tuple(await open_budget(session=session, window_start=older)) == (first, 7)
    async with db.transaction() as session:  # a newer one: counted from 0
        assert tuple(await open_budget(session=session, window_start=second)) == (second, 0)


async def test_two_workers_overdue_checks_follow_one_another_over_the_next_window(
    workers: tuple[Bot, Bot], sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = workers
    # The app's clock starts at a window's start: both ticks fall in that window, wherever
    # the test's time falls (it runs on with the event loop's, as the plan expects)
    loop, start = asyncio.get_running_loop(), window_start(utcnow(), TICK)
    began = loop.time()
    monkeypatch.setattr(
        scheduling, "utcnow", lambda: start + timedelta(seconds=loop.time() - began)
    )
    plans: dict[str, dict[int, float]] = {}
    for bot in (a, b):
        monkeypatch.setattr(bot.scheduler, "plan", _recorded(bot, plans))
    await _overdue(a, 5)
    await a.scheduler.sweep_tick()  # the five overdue ones: places 0-4 of the window
    await _overdue(b, 5)
    await b.scheduler.sweep_tick()  # five more: places 5-9, after a's, not beside them
    first, second = sorted(plans["worker-a"].values()), sorted(plans["worker-b"].values())
    assert len(first) == len(second) == 5
    step = TICK / BUDGET
    both = first + second
    # one fleet-wide sequence, one check every 0.3 s: a's, then b's (each worker spacing
    # its own at 0.3 s from its own tick would put them side by side, 2 x the pace)
    assert all(abs(y - x - step) < 0.01 for x, y in itertools.pairwise(both)), both
    assert 0 < first[0] - loop.time() <= 2 * TICK  # in the next window: never before now

    async def done() -> bool:  # every claimed check reached the stand-in and was recorded
        busy = a.scheduler._batches or b.scheduler._batches
        return sim.counters.token_requests() == 10 and not busy

    await eventually(done, timeout=20)
    slots = sorted(int(s) for s, n in sim.counters.timeline()["token_requests"].items()
                   for _ in range(n))  # fmt: skip
    assert len(slots) == 10
    assert slots[-1] - slots[0] >= 25, slots  # 2.7 s apart at least (100 ms slots)


@pytest.mark.postgres
async def test_a_worker_frozen_in_its_claim_holds_nobody_else_up(
    postgres_url: str, sim: Simulator, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker frozen with the budget locked (a paused VM, a connection the server has not
    seen die): the others wait at most BUDGET_WAIT_MS, then claim at their own pace, and
    take the shared budget again once the hold ends."""
    from sqlalchemy import text

    caplog.set_level("INFO", logger="bot.checks.scheduler")
    settings = bot_settings(postgres_url, sim, slack, check_interval="90s")
    worker = build_bot(settings, worker_id="worker-b")
    frozen = Database(postgres_url)
    try:
        async with worker.db.transaction() as session:
            await session.execute(delete(Customer))
            await session.execute(delete(ClaimBudget))
            for i in range(20):
                tenant = f"00000000-0000-4000-8000-{i:012d}"
                sim.approve(tenant, "production", list(SCOPES))
                new = NewCustomer(f"{53000000 + i}", f"Klant {i}", Environment.PRODUCTION, tenant)
                await add_customer(new, session=session, state=State.PENDING)
            await session.execute(
                update(Customer).values(next_check_at=utcnow() + timedelta(hours=1))
            )
            await open_budget(session=session, window_start=window_start(utcnow(), TICK))
        await _overdue(worker, 3)
        async with frozen.transaction() as held:
            await held.execute(text("SELECT 1 FROM claim_budgets FOR UPDATE"))  # and freezes
            claim = await asyncio.wait_for(worker.scheduler._claim(), timeout=10)
            assert len(claim.claimed) == 3 and claim.budget.claimed == 0
            assert "held by another worker" in caplog.text
        await _overdue(worker, 2)  # the hold ended: the shared budget again, and it counts
        claim = await worker.scheduler._claim()
        assert len(claim.claimed) == 2 and "free again" in caplog.text
        async with worker.db.transaction() as session:
            assert await session.scalar(select(ClaimBudget.claimed)) == 2
    finally:
        await frozen.close()
        await worker.aclose()
