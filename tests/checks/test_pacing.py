"""While people use the bot, a sweep keeps at most IN_FLIGHT checks in flight, so the event
loop's turns stay short and a Slack request is acked quickly (docs/benchmarks.md); when
nobody does, the pace adds no limit of its own."""

from __future__ import annotations

import asyncio

from bot.checks.pacing import IN_FLIGHT, LoopPace
from tests.harness import BotHarness


async def _most_at_once(pace: LoopPace, checks: int) -> int:
    running = most = 0

    async def one() -> None:
        nonlocal running, most
        async with pace.check():
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.02)
            running -= 1

    async with pace:
        await asyncio.gather(*(one() for _ in range(checks)))
    return most


async def test_checks_in_flight_are_capped_only_while_people_use_the_bot() -> None:
    checks = IN_FLIGHT * 3
    assert await _most_at_once(LoopPace(), checks) == checks
    busy = LoopPace()
    busy.people()
    assert await _most_at_once(busy, checks) == IN_FLIGHT


async def test_a_slack_request_tells_the_sweeps_that_people_are_using_the_bot(
    bot: BotHarness,
) -> None:
    pace = bot.runtime.bot.checker._pace  # the pace every sweep of this bot goes through
    assert not pace.people_active()
    _, key = await bot.command("help")
    await bot.reply(key)
    assert pace.people_active()
