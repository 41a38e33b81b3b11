"""Maintenance windows end to end: ``/brincr maintenance`` as signed requests through the
real Bolt app, checks against the Visma/Brincr stand-in, announcements through the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.alerts.maintenance import Maintenance
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment
from bot.simulator import Simulator
from storage.models import Customer, Incident, MaintenanceWindow
from tests.alerts.test_pagerduty import deliver
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.harness import ADMIN, ALERTS, SUPPORT, BotHarness, eventually, start_bot, text_of

SANDBOX_ALERTS = "C0SANDBOX"


@pytest.fixture
async def bot(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> AsyncIterator[BotHarness]:
    harness = await start_bot(
        sqlite_url, slack, sim, pagerduty_routing_key=ROUTING_KEY, pagerduty_events_url=pd.url,
        sandbox_alert_channel=SANDBOX_ALERTS,
    )  # fmt: skip
    yield harness
    await harness.close()


async def incidents(bot: BotHarness) -> list[Incident]:
    async with bot.runtime.bot.db.transaction() as session:
        return list(await session.scalars(select(Incident)))


async def check_all(bot: BotHarness, ids: list[int]) -> None:
    await bot.runtime.bot.checker.check_many(ids)
    await bot.runtime.bot.upkeep.upstream(utcnow())
    await deliver(bot)


async def test_a_visma_outage_inside_a_maintenance_window_opens_no_incident_and_pages_nobody(
    bot: BotHarness, pd: FakePagerDuty
) -> None:
    ids = [await bot.add_customer(f"{30000000 + i}", f"Klant {i}") for i in range(5)]
    revoked = await bot.add_customer("39999999", "Weggegaan", tenant_id="t-" + "0" * 34)
    await check_all(bot, [*ids, revoked])
    _, key = await bot.command("maintenance production 2h Visma Connect upgrade", user=ADMIN)
    assert "Maintenance for production until" in text_of(await bot.reply(key))
    await deliver(bot)
    (start,) = bot.slack.messages(ALERTS)
    assert "Maintenance for *production*" in text_of(start)
    assert "Visma Connect upgrade" in text_of(start) and f"<@{ADMIN}>" in text_of(start)
    assert bot.slack.messages(SANDBOX_ALERTS) == []  # production only

    bot.sim.fault("production", "token", "down")  # Visma is down for its maintenance
    await check_all(bot, ids)
    await check_all(bot, ids)
    bot.sim.fault("production", "token", None)
    bot.sim.remove("t-" + "0" * 34)  # and a customer really breaks meanwhile
    await check_all(bot, [revoked])
    assert await incidents(bot) == []
    assert len(bot.slack.messages(ALERTS)) == 1 and pd.events == []
    _, key = await bot.command("status 39999999")
    status = text_of(await bot.reply(key))
    assert "revoked" in status and "production is in maintenance until" in status

    _, key = await bot.command("maintenance end production", user=ADMIN)
    assert "Maintenance ended" in text_of(await bot.reply(key))
    await deliver(bot)
    end = bot.slack.messages(ALERTS)[1]
    assert "Maintenance for *production* ended early" in text_of(end)
    await check_all(bot, [*ids, revoked])  # still broken after the window: alerts, once
    await check_all(bot, [*ids, revoked])
    (incident,) = await incidents(bot)
    assert incident.customer_id == revoked
    assert [m for m in bot.slack.messages(ALERTS) if "Weggegaan" in text_of(m)]
    for _ in range(50):
        await deliver(bot)
        if pd.events:
            break
        await asyncio.sleep(0.02)
    assert pd.actions() == ["trigger"]


async def test_a_non_admin_cannot_open_or_end_a_maintenance_window_but_can_list_them(
    bot: BotHarness,
) -> None:
    _, key = await bot.command("maintenance all 1h", user=SUPPORT)
    assert "Only bot admins" in text_of(await bot.reply(key))
    _, key = await bot.command("maintenance end all", user=SUPPORT)
    assert "Only bot admins" in text_of(await bot.reply(key))
    _, key = await bot.command("maintenance", user=SUPPORT)
    assert "No maintenance window" in text_of(await bot.reply(key))
    _, key = await bot.command("maintenance all 1h Brincr release", user=ADMIN)
    await bot.reply(key)
    _, key = await bot.command("maintenance", user=SUPPORT)
    listing = text_of(await bot.reply(key))
    assert "*production*" in listing and "*sandbox*" in listing and "Brincr release" in listing
    await deliver(bot)
    assert len(bot.slack.messages(ALERTS)) == 1  # production's announcement
    assert len(bot.slack.messages(SANDBOX_ALERTS)) == 1  # sandbox's, in its own channel


async def test_bad_maintenance_input_shows_the_right_form_and_stores_nothing(
    bot: BotHarness,
) -> None:
    refusals = {
        "maintenance staging 2h": "`staging` is not an environment",
        "maintenance production soon": "not a duration",
        "maintenance sandbox": "Which environment, and for how long?",
        "maintenance end": "Which environment?",
        "maintenance production 8d": "at most 7 days",
    }
    for text, why in refusals.items():
        _, key = await bot.command(text, user=ADMIN)
        answer = text_of(await bot.reply(key))
        assert why in answer, (text, answer)
    async with bot.runtime.bot.db.transaction() as session:
        assert list(await session.scalars(select(MaintenanceWindow))) == []


async def test_a_window_that_runs_out_is_announced_once_by_two_replicas(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, bot: BotHarness
) -> None:
    other = await start_bot(sqlite_url, slack, sim, worker_id="replica-2")
    try:
        first = Maintenance(bot.runtime.bot.services)
        second = Maintenance(other.runtime.bot.services)
        await first.begin((Environment.PRODUCTION,), timedelta(hours=1), None, ADMIN)
        later = utcnow() + timedelta(hours=1, minutes=1)
        assert await first.announce_ends(utcnow()) == 0  # not over yet
        counts = await asyncio.gather(first.announce_ends(later), second.announce_ends(later))
        assert sorted(counts) == [0, 1]
        await deliver(bot)
        ends = [m for m in slack.messages(ALERTS) if "ended as planned" in text_of(m)]
        assert len(ends) == 1
        assert await first.windows() == []
    finally:
        await other.close()


async def test_the_scheduler_announces_a_window_s_end_and_rechecks_broken_customers_at_once(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, bot: BotHarness
) -> None:
    broken = await bot.add_customer("12345678", "Bouwbedrijf")
    healthy = await bot.add_customer("23456789", "Tweede Klant")
    await Maintenance(bot.runtime.bot.services).begin(
        (Environment.PRODUCTION,), timedelta(hours=1), None, ADMIN
    )
    later = utcnow() + timedelta(hours=1)
    async with bot.runtime.bot.db.transaction() as session:  # the window has run out
        await session.execute(update(MaintenanceWindow).values(ends_at=utcnow()))
        await session.execute(update(Customer).values(next_check_at=later, last_check_at=None))
        await session.execute(update(Customer).where(Customer.id == broken).values(state="failing"))
    scheduled = await start_bot(
        sqlite_url, slack, sim, schedule=True, worker_id="scheduled", check_interval="60s"
    )
    try:

        async def announced_and_rechecked() -> bool:
            ended = any("ended as planned" in text_of(m) for m in slack.messages(ALERTS))
            async with bot.runtime.bot.db.transaction() as session:
                checked = await session.get_one(Customer, broken)
                await session.refresh(checked)
                return ended and checked.last_check_at is not None

        await eventually(announced_and_rechecked, timeout=15)
        async with bot.runtime.bot.db.transaction() as session:
            untouched = await session.get_one(Customer, healthy)
            assert untouched.last_check_at is None  # only the broken are checked again now
    finally:
        await scheduled.close()


async def test_help_names_the_on_call_commands(bot: BotHarness) -> None:
    _, key = await bot.command("help")
    text = text_of(await bot.reply(key))
    assert "/brincr maintenance <production|sandbox|all> <duration> [reason]" in text
    assert "/brincr maintenance end" in text and "/brincr resolve <customer>" in text
