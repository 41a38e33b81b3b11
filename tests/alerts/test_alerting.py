"""On-call alerting end to end: checks against the Visma/Brincr stand-in, incidents and their
messages through the outbox to a fake Slack Web API, buttons as signed requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment
from bot.onboarding.forms import InviteForm
from bot.onboarding.invitations import invite
from bot.simulator import Simulator
from bot.slack.ids import Action
from storage.models import Customer, Incident
from tests.harness import ADMIN, ALERTS, SUPPORT, BotHarness, start_bot, text_of


@pytest.fixture
async def bot(sqlite_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(sqlite_url, slack, sim, alert_repeat="1h")
    yield harness
    await harness.close()


async def check(bot: BotHarness, *ids: int) -> None:
    await bot.runtime.bot.checker.check_many(list(ids))
    await deliver(bot)


async def deliver(bot: BotHarness) -> None:
    while await bot.runtime.bot.outbox.deliver_due():
        pass


def top_level(bot: BotHarness) -> list[dict[str, Any]]:
    return [m for m in bot.slack.messages(ALERTS) if "thread_ts" not in m]


def thread(bot: BotHarness, root: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in bot.slack.messages(ALERTS) if m.get("thread_ts") == root["ts"]]


async def open_incidents(bot: BotHarness) -> list[Incident]:
    async with bot.runtime.bot.db.transaction() as session:
        rows = await session.scalars(select(Incident).where(Incident.resolved_at.is_(None)))
        return list(rows)


async def test_a_revoked_scope_alerts_once_naming_the_scope(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf <!channel>", tenant_id=tenant)
    await check(bot, cid)
    assert top_level(bot) == []
    bot.sim.revoke(tenant, ["brincr:order"])
    await check(bot, cid)
    await check(bot, cid)
    (alert,) = top_level(bot)
    text = text_of(alert)
    assert "Missing scopes: `brincr:order`" in text
    assert "KvK 12345678" in text and "production" in text
    assert f"<@{ADMIN}>" in text  # the account manager
    assert "<!channel>" not in text.replace(alert["blocks"][0]["text"]["text"], "")
    actions = next(b for b in alert["blocks"] if b["type"] == "actions")["elements"]
    assert [e["action_id"] for e in actions] == [
        Action.ACKNOWLEDGE, Action.SNOOZE, Action.CHECK_NOW, Action.RECONNECT, Action.RESOLVE,
        Action.HISTORY,
    ]  # fmt: skip
    assert [o["text"]["text"] for o in actions[1]["options"]] == [
        "1 hour", "4 hours", "1 day", "1 week",
    ]  # fmt: skip


async def test_flapping_below_the_threshold_stays_quiet_and_reaching_it_alerts_once(
    bot: BotHarness,
) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    broken = {"env": "production", "service": "api", "mode": "status", "status": 404}
    for failing in (True, False, True, False):  # fail, ok, fail, ok (threshold 2)
        bot.sim.fault(**broken, tenant_id=tenant) if failing else bot.sim.fault(
            "production", "api", None, tenant_id=tenant
        )
        await check(bot, cid)
    assert top_level(bot) == []
    bot.sim.fault(**broken, tenant_id=tenant)
    await check(bot, cid)
    await check(bot, cid)
    await check(bot, cid)
    (alert,) = top_level(bot)
    assert "failing" in text_of(alert) and "404" in text_of(alert)


async def test_recovery_updates_the_message_and_notes_the_downtime_once(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    bot.sim.revoke(tenant, ["brincr:order"])
    await check(bot, cid)
    bot.sim.approve(tenant, "production", ["brincr:country", "brincr:category", "brincr:order"])
    await check(bot, cid)
    await check(bot, cid)
    (alert,) = top_level(bot)
    assert "Resolved" in text_of(alert)
    assert not [b for b in alert["blocks"] if b["type"] == "actions"]  # no buttons when resolved
    replies = [m for m in thread(bot, alert) if "recovered after" in m["text"]]
    assert len(replies) == 1
    assert await open_incidents(bot) == []


async def test_acknowledge_updates_the_message_and_stops_reminders(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    bot.sim.remove(tenant)
    await check(bot, cid)
    (incident,) = await open_incidents(bot)
    response, key = await bot.action(
        Action.ACKNOWLEDGE, str(incident.id), user=SUPPORT, ephemeral=False
    )
    assert response.status_code == 200
    assert "Only bot admins may acknowledge incidents" in text_of(await bot.reply(key))
    (still,) = await open_incidents(bot)
    assert still.acknowledged_by is None
    response, _ = await bot.action(
        Action.ACKNOWLEDGE, str(incident.id), user=ADMIN, ephemeral=False
    )
    assert response.status_code == 200
    await wait_delivered(bot, lambda: "acknowledged by" in text_of(top_level(bot)[0]))
    (alert,) = top_level(bot)
    assert f"acknowledged by <@{ADMIN}>" in text_of(alert)
    assert any("Acknowledged by" in m["text"] for m in thread(bot, alert))
    upkeep = bot.runtime.bot.upkeep
    assert await upkeep.reminders(utcnow() + timedelta(hours=5)) == 0


async def wait_delivered(bot: BotHarness, done: Any) -> None:
    for _ in range(100):
        await deliver(bot)
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not delivered")


async def test_reminders_repeat_in_the_thread_and_are_capped(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    bot.sim.remove(tenant)
    await check(bot, cid)
    upkeep = bot.runtime.bot.upkeep
    now = utcnow()
    sent = [await upkeep.reminders(now + timedelta(hours=h, minutes=1)) for h in range(1, 7)]
    assert sent == [1, 1, 1, 0, 0, 0]
    await deliver(bot)
    (alert,) = top_level(bot)
    reminders = [m for m in thread(bot, alert) if "Reminder" in m["text"]]
    assert len(reminders) == 3
    assert "last reminder" in reminders[-1]["text"]


async def test_snooze_from_the_button_is_shown_and_its_end_announced(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    bot.sim.remove(tenant)
    await check(bot, cid)
    (incident,) = await open_incidents(bot)
    _, key = await snooze(bot, incident.id, "4h", user=SUPPORT)
    assert "Only bot admins" in text_of(await bot.reply(key))
    await snooze(bot, incident.id, "4h", user=ADMIN)
    await wait_delivered(bot, lambda: ":zzz: snoozed until" in text_of(top_level(bot)[0]))
    upkeep = bot.runtime.bot.upkeep
    later = utcnow() + timedelta(hours=2)
    assert await upkeep.reminders(later) == 0  # snoozed: no reminder
    assert await upkeep.snooze_ends(later) == 0
    assert await upkeep.snooze_ends(utcnow() + timedelta(hours=4, minutes=1)) == 1
    assert await upkeep.snooze_ends(utcnow() + timedelta(hours=5)) == 0  # announced once
    await deliver(bot)
    (alert,) = top_level(bot)
    assert any("Snooze ended" in m["text"] for m in thread(bot, alert))
    assert ":zzz:" not in text_of(alert)


async def snooze(bot: BotHarness, incident_id: int, duration: str, *, user: str) -> Any:
    choice = f"{incident_id}:{duration}"
    return await bot.action(
        Action.SNOOZE.value, choice, user=user, channel=ALERTS, ephemeral=False, select=True
    )


async def test_an_upstream_outage_opens_one_incident_and_no_customer_alerts(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, check_timeout="3s", check_concurrency=200)
    try:
        ids = [await bot.add_customer(f"{10000000 + i}", f"Klant {i}") for i in range(200)]
        revoked = ids[:3]
        async with bot.runtime.bot.db.transaction() as session:
            tenants = (
                await session.scalars(select(Customer.tenant_id).where(Customer.id.in_(revoked)))
            ).all()
        sim.fault("production", "token", "timeout")
        await check(bot, *ids)
        upkeep = bot.runtime.bot.upkeep
        await upkeep.upstream(utcnow())
        await deliver(bot)
        (alert,) = top_level(bot)
        assert "Visma Connect (production) is failing" in text_of(alert)
        assert "*200* customers affected" in text_of(alert)
        for tenant in tenants:
            assert tenant is not None
            sim.remove(tenant)
        sim.fault("production", "token", None)
        await check(bot, *ids)
        await upkeep.upstream(utcnow())
        await deliver(bot)
        alerts = top_level(bot)
        assert len(alerts) == 4
        assert "Resolved" in text_of(alerts[0])
        assert sorted("revoked" in text_of(a) for a in alerts[1:]) == [True] * 3
        async with bot.runtime.bot.db.transaction() as session:
            count = await session.scalar(select(func.count()).select_from(Incident))
        assert count == 4
    finally:
        await bot.close()


async def test_app_credentials_refused_open_one_app_incident(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, production_client_secret="wrong")
    try:
        ids = [await bot.add_customer(f"{20000000 + i}", f"Klant {i}") for i in range(5)]
        await check(bot, *ids)
        await bot.runtime.bot.upkeep.upstream(utcnow())
        await deliver(bot)
        (alert,) = top_level(bot)
        assert "refuses our production app credentials" in text_of(alert)
        assert "invalid_client" in text_of(alert)
    finally:
        await bot.close()


async def test_a_snoozed_customer_does_not_alert_until_the_snooze_ends(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    _, key = await bot.command("snooze 12345678 1h", user=ADMIN)
    await bot.reply(key)
    bot.sim.remove(tenant)
    await check(bot, cid)
    assert top_level(bot) == []
    async with bot.runtime.bot.db.transaction() as session:
        await session.execute(
            update(Customer).values(snoozed_until=utcnow() - timedelta(seconds=1))
        )
    assert await bot.runtime.bot.upkeep.snooze_ends(utcnow()) == 1
    await check(bot, cid)
    texts = [text_of(m) for m in top_level(bot)]
    assert len(texts) == 2
    assert "Snooze for *Bouwbedrijf*" in texts[0] and "revoked" in texts[0]
    assert "revoked" in texts[1]


async def test_reconnect_instructions_go_to_the_alert_thread(bot: BotHarness) -> None:
    form = InviteForm("12345678", "INV-RECONNECT-1", "Bouwbedrijf", Environment.PRODUCTION,
                      "en", None)  # fmt: skip
    await invite(bot.runtime.bot.services, form, invited_by=ADMIN, channel_id="C0SALES")
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    bot.sim.approve(tenant, "production", ["brincr:country"])
    _, key = await bot.command(f"link 12345678 {tenant}", user=ADMIN)
    await bot.reply(key)
    await deliver(bot)
    (alert,) = top_level(bot)
    _, key = await bot.action(Action.RECONNECT, "12345678", user=SUPPORT, ephemeral=False)
    assert "Only bot admins" in text_of(await bot.reply(key))
    await bot.action(Action.RECONNECT, "12345678", user=ADMIN, ephemeral=False)
    await wait_delivered(
        bot, lambda: any("INV-RECONNECT-1" in text_of(m) for m in thread(bot, alert))
    )


async def test_reconnect_without_an_invitation_says_how_to_send_one(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    bot.sim.remove(tenant)
    await check(bot, cid)
    _, key = await bot.action(Action.RECONNECT, "12345678", user=ADMIN, ephemeral=False)
    assert "/brincr invite 12345678 <code>" in text_of(await bot.reply(key))
