"""A stalled scheduler is noticed within two intervals, said loudly once, and readiness
follows it; here the stall is real: another connection holds SQLite's write lock."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest
from sqlalchemy import make_url

from bot.checks.scheduler import Scheduler
from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from tests.harness import start_bot

INTERVAL = 1.0


async def _until_not_ready(scheduler: Scheduler) -> float:
    """Seconds until the scheduler says it is not ready (polled, as /readyz would)."""
    started = time.monotonic()
    for _ in range(200):
        if not (await scheduler.readiness())[0]:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _hold_write_lock(path: str) -> sqlite3.Connection:
    """Take SQLite's write lock from another connection, off the event loop: the bot's own
    write may be mid-transaction on this loop, and a busy wait here would block it from
    committing (a self-inflicted deadlock that ends in "database is locked")."""
    blocker = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    await asyncio.to_thread(blocker.execute, "BEGIN EXCLUSIVE")  # every write now waits
    return blocker


@pytest.mark.expected_errors("scheduler stalled")
async def test_a_stalled_scheduler_is_logged_once_and_turns_readiness_red(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bot = await start_bot(sqlite_url, slack, sim, schedule=True, check_interval=f"{INTERVAL:g}s")
    scheduler = bot.runtime.bot.scheduler
    try:
        await bot.add_customer("12345678", "Bouwbedrijf")
        await asyncio.sleep(0.5)
        assert (await scheduler.readiness())[0]
        blocker = await _hold_write_lock(make_url(sqlite_url).database or "")
        noticed = await _until_not_ready(scheduler)
        await asyncio.sleep(1.5 * INTERVAL)  # still stalled: no second ERROR line
        ready, detail = await scheduler.readiness()
        blocker.execute("COMMIT")
        blocker.close()
        await asyncio.sleep(1.0)
        assert (await scheduler.readiness())[0]
    finally:
        await bot.close()
    assert noticed < 2 * INTERVAL
    assert not ready and "no sweep completed" in detail
    stalls = [r for r in caplog.records if "scheduler stalled" in r.getMessage()]
    assert len(stalls) == 1 and stalls[0].levelno == logging.ERROR
    assert any("scheduler running again" in r.getMessage() for r in caplog.records)
