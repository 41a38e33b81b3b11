"""One incident for one cause, end to end: many customers losing the same scope at once
against the Visma/Brincr stand-in, the grouped message through the outbox to the fake Slack
Web API, the page to the PagerDuty stand-in, ``status`` as a signed command."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.alerts.grouping import group_threshold
from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from bot.slack.ids import Action
from storage.models import Customer, Incident
from tests.alerts.test_pagerduty import deliver
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.harness import ADMIN, ALERTS, SCOPES, BotHarness, start_bot, text_of


@pytest.fixture
def bot(paging_bot: BotHarness) -> BotHarness:
    """The whole bot, paging the local PagerDuty stand-in (``pd``)."""
    return paging_bot


def top_level(bot: BotHarness) -> list[dict[str, Any]]:
    return [m for m in bot.slack.messages(ALERTS) if "thread_ts" not in m]


async def tenants(bot: BotHarness, ids: list[int]) -> dict[int, str]:
    async with bot.runtime.bot.db.transaction() as session:
        rows = await session.execute(
            select(Customer.id, Customer.tenant_id).where(Customer.id.in_(ids))
        )
        return {cid: str(tenant) for cid, tenant in rows}


async def check(bot: BotHarness, ids: list[int]) -> None:
    await bot.runtime.bot.checker.check_many(ids)
    await deliver(bot)


async def settle(bot: BotHarness, done: Any) -> None:
    for _ in range(200):
        await deliver(bot)
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not delivered")


@pytest.mark.parametrize(("customers", "grouped"), [(4, False), (5, True)])
async def test_five_customers_with_one_cause_make_a_group_and_four_do_not(
    bot: BotHarness, customers: int, grouped: bool
) -> None:
    assert group_threshold() == 5  # what docs/interface.md promises
    ids = [await bot.add_customer(f"{41000000 + i}", f"Klant {i:02}") for i in range(customers)]
    await check(bot, ids)
    for tenant in (await tenants(bot, ids)).values():
        bot.sim.revoke(tenant, ["brincr:order"])
    await check(bot, ids)
    await check(bot, ids)
    async with bot.runtime.bot.db.transaction() as session:
        kinds = sorted(i.kind for i in await session.scalars(select(Incident)))
    if grouped:
        assert kinds == ["group"] and len(top_level(bot)) == 1
    else:
        assert kinds == ["customer"] * customers and len(top_level(bot)) == customers


async def test_thirty_customers_losing_the_same_scope_make_one_grouped_incident(
    bot: BotHarness, pd: FakePagerDuty
) -> None:
    ids = [await bot.add_customer(f"{40000000 + i}", f"Klant {i:02}") for i in range(30)]
    await check(bot, ids)
    tenant_of = await tenants(bot, ids)
    for tenant in tenant_of.values():
        bot.sim.revoke(tenant, ["brincr:order"])  # a rollout: one more scope required
    await check(bot, ids)
    await check(bot, ids)
    alerts = top_level(bot)
    assert len(alerts) == 1  # the issue allows 2; one batch of checks forms the group
    group = alerts[-1]
    text = text_of(group)
    assert "brincr:order" in text and "*30*" in text
    assert "Klant 00" in text and "KvK 40000000" in text
    assert "the full list is in the thread" in text
    thread = [m for m in bot.slack.messages(ALERTS) if m.get("thread_ts") == group["ts"]]
    assert "Klant 29" in "\n".join(text_of(m) for m in thread)
    await settle(bot, lambda: len(pd.events) == 1)
    assert "30 production customers scopes_missing" in pd.events[0]["payload"]["summary"]

    bot.sim.approve(tenant_of[ids[0]], "production", list(SCOPES))  # one recovers
    await check(bot, [ids[0]])
    await settle(bot, lambda: "*29*" in text_of(top_level(bot)[-1]))
    assert len(top_level(bot)) == len(alerts)  # updated in place, nothing new

    for cid in (ids[0], ids[1]):
        _, key = await bot.command(f"status {40000000 + cid - ids[0]}")
        status = text_of(await bot.reply(key))
        if cid == ids[0]:
            assert "grouped incident" not in status
        else:
            assert "brincr:order" in status and "Part of a grouped incident" in status
    assert pd.actions() == ["trigger"]


async def test_the_group_resolves_when_its_last_customer_recovers_and_its_buttons_act_for_it(
    database_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(
        database_url, slack, sim, pagerduty_routing_key=ROUTING_KEY, pagerduty_events_url=pd.url
    )
    try:
        await _group_lifecycle(bot, pd)
    finally:
        await bot.close()


async def _group_lifecycle(bot: BotHarness, pd: FakePagerDuty) -> None:
    ids = [await bot.add_customer(f"{50000000 + i}", f"Klant {i}") for i in range(6)]
    tenant_of = await tenants(bot, ids)
    for tenant in tenant_of.values():
        bot.sim.remove(tenant)  # all revoked for the same reason
    await check(bot, ids)
    (alert,) = top_level(bot)
    assert "*6*" in text_of(alert) and "revoked" in text_of(alert)
    async with bot.runtime.bot.db.transaction() as session:
        (group,) = (await session.scalars(select(Incident))).all()
    assert group.kind == "group"
    await bot.action(Action.ACKNOWLEDGE, str(group.id), user=ADMIN, ephemeral=False)
    await settle(bot, lambda: pd.actions() == ["trigger", "acknowledge"])
    for cid, tenant in tenant_of.items():
        bot.sim.approve(tenant, "production", list(SCOPES))
        await check(bot, [cid])
    await settle(bot, lambda: pd.actions() == ["trigger", "acknowledge", "resolve"])
    (alert,) = top_level(bot)
    assert "Resolved" in text_of(alert)
    async with bot.runtime.bot.db.transaction() as session:
        (group,) = (await session.scalars(select(Incident))).all()
    assert group.resolved_at is not None and group.affected_count == 0


async def test_four_customers_broken_the_same_way_still_alert_on_their_own(
    bot: BotHarness,
) -> None:
    ids = [await bot.add_customer(f"{60000000 + i}", f"Klant {i}") for i in range(4)]
    for tenant in (await tenants(bot, ids)).values():
        bot.sim.revoke(tenant, ["brincr:order"])
    await check(bot, ids)
    alerts = top_level(bot)
    assert len(alerts) == 4
    assert all("Missing scopes: `brincr:order`" in text_of(a) for a in alerts)


async def test_customers_joining_later_update_the_group_once_and_are_listed_in_one_reply(
    bot: BotHarness,
) -> None:
    ids = [await bot.add_customer(f"{70000000 + i}", f"Klant {i}") for i in range(8)]
    tenant_of = await tenants(bot, ids)
    for cid in ids[:5]:
        bot.sim.revoke(tenant_of[cid], ["brincr:order"])
    await check(bot, ids)
    (group,) = top_level(bot)
    assert "*5*" in text_of(group)
    updates_before = len(bot.slack.calls_to("chat.update"))
    for cid in ids[5:]:  # three more, each in its own sweep, before Slack hears of any
        bot.sim.revoke(tenant_of[cid], ["brincr:order"])
        await bot.runtime.bot.checker.check_many([cid])
    await deliver(bot)
    assert len(top_level(bot)) == 1
    assert "*8*" in text_of(top_level(bot)[0])
    assert len(bot.slack.calls_to("chat.update")) == updates_before + 1  # coalesced
    (joined,) = [m for m in bot.slack.messages(ALERTS) if m.get("thread_ts") == group["ts"]]
    assert all(f"Klant {i}" in text_of(joined) for i in (5, 6, 7))


async def test_resolving_a_group_by_hand_regroups_its_still_broken_customers_at_their_next_check(
    bot: BotHarness, pd: FakePagerDuty
) -> None:
    ids = [await bot.add_customer(f"{80000000 + i}", f"Klant {i}") for i in range(6)]
    for tenant in (await tenants(bot, ids)).values():
        bot.sim.revoke(tenant, ["brincr:order"])
    await check(bot, ids)
    async with bot.runtime.bot.db.transaction() as session:
        (group,) = (await session.scalars(select(Incident))).all()
    await bot.action(Action.RESOLVE, str(group.id), user=ADMIN, channel=ALERTS, ephemeral=False)
    await settle(bot, lambda: "Resolved" in text_of(top_level(bot)[0]))
    assert "*6*" in text_of(top_level(bot)[0])
    await check(bot, ids)
    alerts = top_level(bot)
    assert len(alerts) == 2 and "*6*" in text_of(alerts[1])
    await settle(bot, lambda: pd.actions() == ["trigger", "resolve", "trigger"])


async def test_the_thread_lists_every_customer_whole_however_long_the_names(
    bot: BotHarness,
) -> None:
    """Issue 19, finding 6: 50 names of ~66 characters overflowed one 3,000-character
    section: 36 were shown, the 37th cut mid-name. Sections split by characters now."""
    names = [f"Bouw- en Infrastructuur Onderhoudsbedrijf Noord-Holland & Zn {i:02} B.V."
             for i in range(50)]  # fmt: skip
    ids = [await bot.add_customer(f"{41000000 + i}", name) for i, name in enumerate(names)]
    await check(bot, ids)
    for tenant in (await tenants(bot, ids)).values():
        bot.sim.revoke(tenant, ["brincr:order"])
    await check(bot, ids)
    (group,) = top_level(bot)
    thread = [m for m in bot.slack.messages(ALERTS) if m.get("thread_ts") == group["ts"]]
    sections = [
        b["text"]["text"] for m in [group, *thread] for b in m["blocks"] if b["type"] == "section"
    ]
    assert all(len(text) <= 3000 for text in sections)
    listed = "\n".join(sections)  # what Slack shows: the blocks, not the fallback text
    for i, name in enumerate(names):
        assert f"• {name.replace('&', '&amp;')} (KvK {41000000 + i})" in listed, name
