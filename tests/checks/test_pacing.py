"""The load on Visma: a scheduler tick's checks are spread over the tick, never sent at once
(bench/upstream_flatness.py)."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import update

from bot.composition import Bot, build_bot
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.models import Customer
from tests.harness import SCOPES, bot_settings, eventually


async def _fleet(
    sqlite_url: str, sim: Simulator, slack: FakeSlack, count: int, due_in: float = 0.0
) -> Bot:
    """A bot (not started: the test drives its scheduler's ticks) with ``count`` linked
    customers, each due ``due_in`` seconds from now, at a 90 s interval (3 s ticks)."""
    bot = build_bot(bot_settings(sqlite_url, sim, slack, check_interval="90s"))
    tenants = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    async with bot.db.transaction() as session:
        for i, tenant in enumerate(tenants):
            sim.approve(tenant, "production", list(SCOPES))
            new = NewCustomer(f"{50000000 + i}", f"Klant {i}", Environment.PRODUCTION, tenant)
            await add_customer(new, session=session, state=State.PENDING)
        due = utcnow() + timedelta(seconds=due_in)
        await session.execute(update(Customer).values(next_check_at=due))
    return bot


def _token_slots(sim: Simulator) -> list[int]:
    """The 100 ms slots the stand-in's token requests arrived in, one entry per request."""
    counts = sim.counters.timeline()["token_requests"]
    return sorted(int(slot) for slot, n in counts.items() for _ in range(n))


async def _tick(bot: Bot, sim: Simulator, expected: int) -> list[int]:
    await bot.scheduler.sweep_tick()

    async def done() -> bool:  # every check reached the stand-in and was recorded
        return sim.counters.token_requests() == expected and not bot.scheduler._batches

    await eventually(done, timeout=15)
    return _token_slots(sim)


async def test_an_overdue_tick_reaches_visma_spread_over_the_tick_not_at_once(
    sqlite_url: str, sim: Simulator, slack: FakeSlack
) -> None:
    bot = await _fleet(sqlite_url, sim, slack, 30)  # all due now: a restart's catch-up
    try:
        assert bot.scheduler.tick == 3.0  # 10 claims a tick (at least 10), one every 0.3 s
        slots = await _tick(bot, sim, 10)
    finally:
        await bot.aclose()
    assert len(slots) == 10  # one token request per claimed customer, nothing else
    # started one every 0.3 s: the first and the last at least 2.7 s apart (a busy machine
    # only spreads them further), where one burst would put them in the same few slots
    assert slots[-1] - slots[0] >= 25, slots


async def test_a_check_claimed_before_its_slot_starts_at_its_slot_never_early(
    sqlite_url: str, sim: Simulator, slack: FakeSlack
) -> None:
    bot = await _fleet(sqlite_url, sim, slack, 3, due_in=2.0)  # due before the next tick
    try:
        claimed_at = int(time.time() * 10)
        slots = await _tick(bot, sim, 3)
    finally:
        await bot.aclose()
    assert len(slots) == 3
    assert min(slots) >= claimed_at + 19, (claimed_at, slots)  # at +2 s, not at the claim
