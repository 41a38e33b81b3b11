"""Checks by hand stay within a budget (issue 19, finding 4): 20 per person and 100 for
everyone in 10 minutes, counted from the audit log; admins are never refused; the refusal
says when the next one is possible; the count and the record are one step across replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.core.errors import UserError
from bot.demo.fake_slack import FakeSlack
from bot.fleet import service
from bot.simulator import Simulator
from storage.models import AuditEntry
from tests.harness import ADMIN, SUPPORT, BotHarness, start_bot, text_of

OTHER = "U0OTHER"


async def _customers(bot: BotHarness, count: int) -> list[int]:
    return [await bot.add_customer(f"{20000000 + i}", f"Klant {i:02d}") for i in range(count)]


async def _check(bot: BotHarness, kvk: str, user: str) -> str:
    _, key = await bot.command(f"check {kvk}", user=user)
    return text_of(await bot.reply(key))


async def test_one_member_checking_sixty_customers_costs_at_most_thirty_token_requests(
    bot: BotHarness,
) -> None:
    await _customers(bot, 60)
    bot.sim.counters.reset()
    answers = [await _check(bot, f"{20000000 + i}", SUPPORT) for i in range(60)]
    started = [a for a in answers if a.startswith(":hourglass")]
    refused = [a for a in answers if "checks by hand in 10m" in a]
    assert len(started) == 20 and len(refused) == 40
    assert bot.sim.counters.token_requests() <= 30
    assert "You have started 20 checks by hand in 10m" in refused[0]
    assert "The next is possible <!date^" in refused[0] and "(in 9m " in refused[0]
    assert "Klant 25" in await _check(bot, "20000025", ADMIN)  # admins are not limited
    assert "Klant 26" in await _check(bot, "20000026", OTHER)  # the budget is per person


async def test_the_team_budget_refuses_everyone_but_admins(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MANUAL_OVERALL", 3)
    await _customers(bot, 6)
    for i, user in enumerate((SUPPORT, OTHER, ADMIN)):
        assert (await _check(bot, f"{20000000 + i}", user)).startswith(":hourglass")
    refused = await _check(bot, "20000003", OTHER)
    assert "The team has started 3 checks by hand in 10m" in refused
    assert "The next is possible" in refused
    assert (await _check(bot, "20000004", ADMIN)).startswith(":hourglass")


@pytest.fixture
async def any_db_bot(
    database_url: str, slack: FakeSlack, sim: Simulator
) -> AsyncIterator[BotHarness]:
    harness = await start_bot(database_url, slack, sim)
    yield harness
    await harness.close()


async def test_concurrent_checks_by_hand_never_pass_the_budget(
    any_db_bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty claims at once on separate connections (as from several replicas): exactly
    MANUAL_PER_PERSON pass (PostgreSQL: the advisory lock; SQLite: one writer at a time)."""
    bot = any_db_bot
    monkeypatch.setattr(service, "MANUAL_PER_PERSON", 5)
    ids = await _customers(bot, 20)
    fleet = bot.runtime.bot.fleet
    results = await asyncio.gather(
        *(fleet.start_manual_check(i, SUPPORT) for i in ids), return_exceptions=True
    )
    assert sum(r is None for r in results) == 5
    assert all(r is None or isinstance(r, UserError) for r in results)
    async with bot.runtime.bot.db.transaction() as session:
        recorded = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "check")
        )
    assert recorded == 5
