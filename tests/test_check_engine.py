"""``serve --role all`` runs the machine's work in a check engine: a worker on its own event
loop in a thread (:class:`bot.runtime.CheckEngine`), so Slack requests never queue behind a
sweep on the listener's loop. One process still does everything: it checks and alerts once,
answers people, wakes the engine's senders for rows the listener writes, reports the engine's
scheduler in ``/readyz`` and stops the thread with the process."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import func, select

from bot.demo.fake_slack import FakeSlack
from bot.domain.roles import Role
from bot.runtime import Runtime
from bot.simulator import Simulator
from storage.db import Database
from storage.models import CheckResult, Notification
from storage.statuses import NotificationStatus
from tests.harness import ALERTS, BotHarness, bot_settings, eventually, start_bot, text_of

INTERVAL = "1s"


def _alerts(slack: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in slack.messages(ALERTS) if "thread_ts" not in m]


async def _checks(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(CheckResult)) or 0)


async def _unsent(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        count = select(func.count()).select_from(Notification)
        pending = count.where(Notification.status == NotificationStatus.PENDING)
        return int(await session.scalar(pending) or 0)


async def _engine_bot(database_url: str, slack: FakeSlack, sim: Simulator) -> BotHarness:
    bot = await start_bot(database_url, slack, sim, schedule=True, check_interval=INTERVAL)
    assert bot.runtime.engine is not None and bot.runtime.engine.runtime is not None
    return bot


async def test_the_engine_checks_and_alerts_once_while_the_listener_answers(
    database_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await _engine_bot(database_url, slack, sim)
    engine = bot.runtime.engine
    assert engine is not None and engine.runtime is not None
    try:
        tenant = "6a1f0c4e-1111-4222-8333-444455556666"
        await bot.add_customer("12345678", "Bouwbedrijf Engine", tenant_id=tenant)
        worker_scheduler = engine.runtime.bot.scheduler

        async def swept() -> bool:
            return worker_scheduler.last_sweep is not None

        await eventually(swept, timeout=10)
        sim.revoke(tenant, ["brincr:order"])

        async def alerted() -> bool:
            return len(_alerts(slack)) == 1

        await eventually(alerted, timeout=15)
        response, key = await bot.command("status 12345678")
        assert response.status_code == 200
        assert "brincr:order" in text_of(await bot.reply(key))
        ready = (await bot.http.get(bot.url + "/readyz")).json()
        assert ready["ok"] is True and ready["role"] == "all"
        assert set(ready["checks"]) == {"database", "scheduler"}
        checked = await _checks(bot)

        async def checked_twice_more_and_sent() -> bool:  # the engine's checks and sender
            return await _checks(bot) >= checked + 2 and await _unsent(bot) == 0

        await eventually(checked_twice_more_and_sent, timeout=15)
        assert len(_alerts(slack)) == 1  # the incident stays one alert
    finally:
        await bot.close()
    # The sweeps ran on the engine, never on the listener's own scheduler, and every row
    # was delivered by the engine's sender (it claims as <worker>/checks).
    assert bot.runtime.bot.scheduler.last_sweep is None
    assert bot.runtime.scheduler is worker_scheduler
    db = Database(database_url)
    async with db.transaction() as session:
        senders = set(await session.scalars(select(Notification.claimed_by)))
    await db.close()
    assert senders == {"test/checks"}


async def test_a_row_the_listener_writes_wakes_the_engines_sender_on_its_thread(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, monkeypatch: Any
) -> None:
    bot = await _engine_bot(sqlite_url, slack, sim)
    engine = bot.runtime.engine
    assert engine is not None and engine.runtime is not None
    woken: list[str] = []
    outbox = engine.runtime.bot.outbox
    wake = outbox.wake

    def recording_wake() -> None:
        woken.append(threading.current_thread().name)
        wake()

    own: list[str] = []  # the listener's own sender never runs: waking it would be lost
    monkeypatch.setattr(outbox, "wake", recording_wake)
    monkeypatch.setattr(bot.runtime.bot.outbox, "wake", lambda: own.append("listener"))
    try:
        woken.clear()
        bot.runtime.bot.services.wake_outbox()  # what a listener's service does after writing

        async def delivered() -> bool:
            return bool(woken)

        await eventually(delivered)
        assert set(woken) == {"check-engine"} and own == []
    finally:
        await bot.close()


async def test_stopping_stops_the_engine_thread_and_a_second_start_works(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await _engine_bot(sqlite_url, slack, sim)
    engine = bot.runtime.engine
    assert engine is not None
    await bot.close()
    assert not engine._thread.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "check-engine"]
    again = await _engine_bot(sqlite_url, slack, sim)  # a restart on the same database
    await again.close()


def test_only_role_all_on_a_shared_database_gets_a_check_engine(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    """A second database engine would see a different, empty in-memory database; web and
    worker replicas are one half each already."""
    memory = bot_settings("sqlite:///:memory:", sim, slack)
    assert Runtime(memory, check_thread=True).engine is None
    on_file = bot_settings(sqlite_url, sim, slack)
    assert Runtime(on_file, check_thread=True).engine is not None
    assert Runtime(on_file).engine is None
    for role in (Role.WEB, Role.WORKER):
        assert Runtime(on_file, role=role, check_thread=True).engine is None
