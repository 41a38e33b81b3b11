"""Closing an incident by hand (Resolve button, ``/brincr resolve``) and reconnect
instructions for customers without an invitation, end to end through the real Bolt app."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.alerts.pager import dedup_key
from bot.slack.ids import Action
from storage.models import Incident
from tests.alerts.test_pagerduty import deliver, pager_rows
from tests.fakes.pagerduty import FakePagerDuty
from tests.harness import ADMIN, ALERTS, SUPPORT, BotHarness, text_of

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
def bot(paging_bot: BotHarness) -> BotHarness:
    """The whole bot, paging the local PagerDuty stand-in (``pd``)."""
    return paging_bot


async def broken_customer(bot: BotHarness) -> int:
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=TENANT)
    bot.sim.revoke(TENANT, ["brincr:order"])
    await bot.runtime.bot.checker.check_many([cid])
    await deliver(bot)
    return cid


async def incidents(bot: BotHarness) -> list[Incident]:
    async with bot.runtime.bot.db.transaction() as session:
        return list(await session.scalars(select(Incident).order_by(Incident.id)))


def top_level(bot: BotHarness) -> list[dict[str, object]]:
    return [m for m in bot.slack.messages(ALERTS) if "thread_ts" not in m]


async def settle(bot: BotHarness, done: object) -> None:
    import asyncio

    for _ in range(200):
        await deliver(bot)
        if callable(done) and done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not delivered")


async def test_the_resolve_button_closes_the_incident_in_place_and_resolves_the_page(
    bot: BotHarness, pd: FakePagerDuty
) -> None:
    cid = await broken_customer(bot)
    (incident,) = await incidents(bot)
    await bot.action(Action.RESOLVE, str(incident.id), user=ADMIN, channel=ALERTS, ephemeral=False)
    await settle(bot, lambda: pd.actions() == ["trigger", "resolve"])
    await settle(bot, lambda: "Resolved" in text_of(top_level(bot)[0]))
    (alert,) = top_level(bot)
    assert not [b for b in alert["blocks"] if b["type"] == "actions"]  # type: ignore[union-attr,index]
    thread = [m for m in bot.slack.messages(ALERTS) if m.get("thread_ts") == alert["ts"]]
    assert any(f"Resolved by <@{ADMIN}>" in m["text"] for m in thread)
    # Still broken: the next check opens a new incident, with a new page.
    await bot.runtime.bot.checker.check_many([cid])
    await deliver(bot)
    first, second = await incidents(bot)
    assert first.resolved_at is not None and second.resolved_at is None
    assert len(top_level(bot)) == 2
    await settle(bot, lambda: pd.actions() == ["trigger", "resolve", "trigger"])
    assert pd.events[0]["dedup_key"] == pd.events[1]["dedup_key"] == dedup_key(first)
    assert pd.events[2]["dedup_key"] == dedup_key(second) != dedup_key(first)
    assert [(r.action, r.status) for r in await pager_rows(bot)] == [
        ("trigger", "sent"), ("resolve", "sent"), ("trigger", "sent")]  # fmt: skip


async def test_a_non_admin_cannot_resolve_an_incident(bot: BotHarness) -> None:
    await broken_customer(bot)
    (incident,) = await incidents(bot)
    _, key = await bot.action(Action.RESOLVE, str(incident.id), user=SUPPORT, ephemeral=False)
    assert "Only bot admins" in text_of(await bot.reply(key))
    _, key = await bot.command("resolve 12345678", user=SUPPORT)
    assert "Only bot admins" in text_of(await bot.reply(key))
    (incident,) = await incidents(bot)
    assert incident.resolved_at is None


async def test_the_resolve_command_closes_the_customers_open_incident(
    bot: BotHarness, pd: FakePagerDuty
) -> None:
    await broken_customer(bot)
    _, key = await bot.command("resolve Bouwbedrijf", user=ADMIN)
    assert "Resolved the incident of *Bouwbedrijf*" in text_of(await bot.reply(key))
    (incident,) = await incidents(bot)
    assert incident.resolved_at is not None
    await settle(bot, lambda: pd.actions() == ["trigger", "resolve"])
    _, key = await bot.command("resolve 12345678", user=ADMIN)
    assert "has no open incident" in text_of(await bot.reply(key))


async def test_reconnect_instructions_without_an_invitation_give_the_reapproval_steps(
    bot: BotHarness,
) -> None:
    await broken_customer(bot)  # added directly, as a CSV import does: no invitation
    (alert,) = top_level(bot)
    await bot.action(Action.RECONNECT, "12345678", user=ADMIN, channel=ALERTS, ephemeral=False)

    def posted() -> bool:
        return any(m.get("thread_ts") == alert["ts"] for m in bot.slack.messages(ALERTS))

    await settle(bot, posted)
    (steps,) = [m for m in bot.slack.messages(ALERTS) if m.get("thread_ts") == alert["ts"]]
    text = text_of(steps)
    assert "Visma App Store" in text and "My apps" in text and "*ON*" in text
    assert "`brincr:order`" in text and "`brincr:country`" not in text  # only what is missing
    assert "weer" in text and "again" in text  # language unknown: Dutch, then English
