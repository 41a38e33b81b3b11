"""One cause, one page, on any fleet (#23): the hold before a new cause alerts, the look for
peers, the release job and the fold-in, on fleets shaped like real ones: customers onboarded
one at a time, each with its own check slot spread over the interval (not one imported batch).

The whole bot runs against the Visma/Brincr stand-in, the fake Slack Web API and the
PagerDuty stand-in; scenario tests run the real scheduler with a short CHECK_INTERVAL and a
real ALERT_GROUP_WAIT (the test settings default it to 0)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from bot.checks.scheduler import tick_seconds
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator
from storage import holds as stored_holds
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import (
    AlertHold,
    CheckResult,
    Customer,
    Incident,
    IncidentMember,
    Notification,
    PagerEvent,
)
from storage.statuses import NotificationStatus, PagerEventStatus
from tests.conftest import _truncate
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.harness import ALERTS, BotHarness, eventually, start_bot, text_of

INTERVAL = 12.0  # seconds; the sweep ticks every 0.4 s
WAIT = 2.0  # ALERT_GROUP_WAIT in the scenario tests
TICK = tick_seconds(timedelta(seconds=INTERVAL))


async def paging_bot_with(
    url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty, **settings: Any
) -> BotHarness:
    return await start_bot(
        url, slack, sim, pagerduty_routing_key=ROUTING_KEY, pagerduty_events_url=pd.url,
        **settings,
    )  # fmt: skip


async def spread_fleet(bot: BotHarness, count: int, *, kvk_base: int = 30000000) -> list[int]:
    """``count`` healthy production customers, onboarded one at a time: each checked once
    at its own slot, spread evenly over the interval, and due again one interval later."""
    ids = [await bot.add_customer(f"{kvk_base + i}", f"Klant {i:02}") for i in range(count)]
    await bot.runtime.bot.checker.check_many(ids)
    interval = bot.runtime.bot.settings.check_interval
    now = utcnow()
    async with bot.runtime.bot.db.transaction() as session:
        for i, customer_id in enumerate(ids):
            slot = now + interval * (i + 1) / count
            await session.execute(
                update(Customer)
                .where(Customer.id == customer_id)
                .values(next_check_at=slot, last_check_at=slot - interval)
            )
    return ids


async def tenants_of(bot: BotHarness, ids: list[int]) -> list[str]:
    async with bot.runtime.bot.db.transaction() as session:
        rows = await session.execute(
            select(Customer.id, Customer.tenant_id).where(Customer.id.in_(ids))
        )
        by_id = {cid: str(tenant) for cid, tenant in rows}
    return [by_id[cid] for cid in ids]


def top_level(slack: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in slack.messages(ALERTS) if "thread_ts" not in m]


async def quiet(bot: BotHarness) -> bool:
    """Nothing more can arrive: no alert is held and nothing is left to send to Slack or
    PagerDuty (what the test then counts is final, however slow the run)."""
    async with bot.runtime.bot.db.transaction() as session:
        held = await session.scalar(select(func.count()).select_from(AlertHold))
        unsent = await session.scalar(
            select(func.count()).where(Notification.status == NotificationStatus.PENDING)
        )
        unpaged = await session.scalar(
            select(func.count()).where(PagerEvent.status == PagerEventStatus.PENDING)
        )
    return not (held or unsent or unpaged)


async def members_of_open_group(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(IncidentMember)
            .join(Incident, Incident.id == IncidentMember.incident_id)
            .where(Incident.resolved_at.is_(None))
        )
    return int(count or 0)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- the storm on a spread fleet --------------------------------------------------------


async def test_twenty_customers_with_spread_slots_losing_a_scope_page_once(
    database_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await paging_bot_with(
        database_url, slack, sim, pd, check_interval=f"{INTERVAL:g}s", alert_group_wait=f"{WAIT:g}s"
    )
    try:
        ids = await spread_fleet(bot, 20)
        await bot.runtime.bot.scheduler.start()
        looks = metric("brincr_alert_look_checks_total")
        for tenant in await tenants_of(bot, ids):
            sim.revoke(tenant, ["brincr:category"])  # an app change at Visma: all at once

        async def everyone_grouped() -> bool:
            return await members_of_open_group(bot) == 20

        await eventually(everyone_grouped, INTERVAL + WAIT + 10)
        await eventually(lambda: _true(len(pd.actions()) >= 1), 10)
        await eventually(lambda: quiet(bot), 10)
    finally:
        await bot.close()
    alerts = top_level(slack)
    assert len(alerts) == 1, [text_of(a)[:80] for a in alerts]
    text = text_of(alerts[0])
    assert "brincr:category" in text and "*20*" in text
    assert "Klant 00" in text and "Klant 19" in text  # the group names all 20
    assert pd.actions() == ["trigger"]
    assert 0 < metric("brincr_alert_look_checks_total") - looks <= 10


async def _true(value: bool) -> bool:
    return value


# --- a lone customer --------------------------------------------------------------------


async def test_a_lone_broken_customer_alerts_once_within_the_wait_plus_a_tick(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await paging_bot_with(
        sqlite_url, slack, sim, pd, check_interval=f"{INTERVAL:g}s", alert_group_wait=f"{WAIT:g}s"
    )
    try:
        ids = await spread_fleet(bot, 20)
        started = utcnow()
        await bot.runtime.bot.scheduler.start()
        lone = ids[2]  # due about 1.8 s from now
        (tenant,) = await tenants_of(bot, [lone])
        sim.revoke(tenant, ["brincr:order"])

        async def alerted() -> bool:
            return len(top_level(slack)) >= 1

        await eventually(alerted, INTERVAL)
        posted = utcnow()
        await eventually(lambda: _true(pd.actions() == ["trigger"]), 10)
        await asyncio.sleep(INTERVAL - (utcnow() - started).total_seconds() + 1)
        async with bot.runtime.bot.db.transaction() as session:
            broken_at = await session.scalar(
                select(func.min(CheckResult.checked_at)).where(
                    CheckResult.customer_id == lone, CheckResult.state == "scopes_missing"
                )
            )
            checks = await session.scalar(
                select(func.count())
                .select_from(CheckResult)
                .where(CheckResult.checked_at >= started)
                .where(CheckResult.checked_at < started + timedelta(seconds=INTERVAL))
            )
    finally:
        await bot.close()
    assert broken_at is not None
    delay = (posted - broken_at).total_seconds()
    # held for ALERT_GROUP_WAIT, then released within one sweep tick (and delivered)
    assert WAIT - 0.2 <= delay <= WAIT + TICK + 1.5, delay
    assert len(top_level(slack)) == 1 and pd.actions() == ["trigger"]
    assert "brincr:order" in text_of(top_level(slack)[0])
    # one interval: each customer once at its slot; the look moved at most 10 checks earlier
    assert checks is not None and checks <= 20 + 10, checks


# --- the hold, the look and its limits, driven check by check ----------------------------


async def test_status_says_the_alert_is_held_and_a_second_break_within_the_interval_costs_no_look(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, alert_group_wait="1m")  # CHECK_INTERVAL 15m
    try:
        ids = await spread_fleet(bot, 12)
        (tenant,) = await tenants_of(bot, [ids[0]])
        sim.revoke(tenant, ["brincr:order"])
        await bot.runtime.bot.checker.check_many([ids[0]])
        assert await due_now(bot) == 10  # the look: ten peers are checked at the next tick
        while await bot.runtime.bot.outbox.deliver_due():
            pass
        assert top_level(slack) == []  # held
        response, key = await bot.command("status 30000000")
        assert response.status_code == 200
        status = text_of((await bot.replies(key, 1, timeout=20))[0])
        assert "Alert held until" in status and "whether others are affected" in status

        await push_back_slots(bot)
        sim.approve(tenant, "production", ["brincr:country", "brincr:category", "brincr:order"])
        await bot.runtime.bot.checker.check_many([ids[0]])  # healed during its hold
        await make_holds_due(bot)
        assert await bot.runtime.bot.alerts.holds.release_due() == {"healed": 1}

        sim.revoke(tenant, ["brincr:order"])
        await bot.runtime.bot.checker.check_many([ids[0]])  # broken again, same interval
        assert await due_now(bot) == 0  # no second look
        await make_holds_due(bot)
        assert await bot.runtime.bot.alerts.holds.release_due() == {"single": 1}
        while await bot.runtime.bot.outbox.deliver_due():
            pass
        assert len(top_level(slack)) == 1
    finally:
        await bot.close()


async def test_an_environment_too_small_for_a_group_alerts_at_once(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, alert_group_wait="1m")
    try:
        ids = await spread_fleet(bot, 4)  # fewer than the group threshold
        (tenant,) = await tenants_of(bot, [ids[0]])
        sim.remove(tenant)
        await bot.runtime.bot.checker.check_many([ids[0]])
        while await bot.runtime.bot.outbox.deliver_due():
            pass
        assert len(top_level(slack)) == 1 and await due_now(bot) == 0
    finally:
        await bot.close()


async def due_now(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.next_check_at <= utcnow())
        )
    return int(count or 0)


async def push_back_slots(bot: BotHarness) -> None:
    async with bot.runtime.bot.db.transaction() as session:
        await session.execute(update(Customer).values(next_check_at=utcnow() + timedelta(hours=1)))


async def make_holds_due(bot: BotHarness) -> None:
    async with bot.runtime.bot.db.transaction() as session:
        await session.execute(update(AlertHold).values(due_at=utcnow()))


# --- fold-in -----------------------------------------------------------------------------


async def test_singles_opened_before_a_group_fold_into_it_and_only_the_group_pages(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await paging_bot_with(sqlite_url, slack, sim, pd, alert_group_wait="1m")
    try:
        ids = await spread_fleet(bot, 10)
        tenants = await tenants_of(bot, ids)
        for i in (0, 1):  # two customers break alone, a while apart: each alerts on its own
            sim.revoke(tenants[i], ["brincr:order"])
            await bot.runtime.bot.checker.check_many([ids[i]])
            await make_holds_due(bot)
            assert await bot.runtime.bot.alerts.holds.release_due() == {"single": 1}
        for tenant in tenants[2:7]:
            sim.revoke(tenant, ["brincr:order"])
        await bot.runtime.bot.checker.check_many(ids[2:7])  # five more: a group
        async with bot.runtime.bot.db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(AlertHold)) == 0
        await settle(bot, pd, ["trigger", "trigger", "resolve", "resolve", "trigger"])
    finally:
        await bot.close()
    alerts = top_level(slack)
    assert len(alerts) == 3  # the two singles, then the group
    for single in alerts[:2]:
        assert "Now part of the grouped incident (*7* customers" in text_of(single)
    assert "*7*" in text_of(alerts[2])
    replies = [text_of(m) for m in slack.messages(ALERTS) if m.get("thread_ts") == alerts[0]["ts"]]
    assert any("joined the grouped incident" in r for r in replies)
    resolved = [e["dedup_key"] for e in pd.events if e["event_action"] == "resolve"]
    triggered = [e["dedup_key"] for e in pd.events if e["event_action"] == "trigger"]
    assert resolved == triggered[:2]  # the singles' pages, not the group's


async def settle(bot: BotHarness, pd: FakePagerDuty, actions: list[str]) -> None:
    for _ in range(200):
        while await bot.runtime.bot.outbox.deliver_due():
            pass
        if bot.runtime.bot.pager is not None:
            while await bot.runtime.bot.pager.deliver_due():
                pass
        if sorted(pd.actions()) == sorted(actions) and await _outbox_empty(bot):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"PagerDuty saw {pd.actions()}, expected {actions}")


async def _outbox_empty(bot: BotHarness) -> bool:
    """No Slack message left to send (the running sender may hold one the test's call skips)."""
    async with bot.runtime.bot.db.transaction() as session:
        pending = select(func.count()).where(Notification.status == NotificationStatus.PENDING)
        return not await session.scalar(pending)


# --- replicas on PostgreSQL ---------------------------------------------------------------


@pytest.mark.postgres
async def test_two_replicas_with_a_spread_fleet_page_once(
    postgres_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    _truncate(postgres_url)
    settings = {"check_interval": f"{INTERVAL:g}s", "alert_group_wait": f"{WAIT:g}s"}
    first = await paging_bot_with(postgres_url, slack, sim, pd, worker_id="a", **settings)
    second = await paging_bot_with(postgres_url, slack, sim, pd, worker_id="b", **settings)
    try:
        ids = await spread_fleet(first, 20)
        await first.runtime.bot.scheduler.start()
        await second.runtime.bot.scheduler.start()
        for tenant in await tenants_of(first, ids):
            sim.revoke(tenant, ["brincr:category"])

        async def everyone_grouped() -> bool:
            return await members_of_open_group(first) == 20

        await eventually(everyone_grouped, INTERVAL + WAIT + 10)
        await eventually(lambda: _true(len(pd.actions()) >= 1), 10)
        await eventually(lambda: quiet(first), 10)
    finally:
        await first.close()
        await second.close()
    assert len(top_level(slack)) == 1
    assert pd.actions() == ["trigger"]


@pytest.mark.postgres
async def test_a_hold_survives_the_replica_that_made_it_and_alerts_once(
    postgres_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    _truncate(postgres_url)
    settings = {"check_interval": f"{INTERVAL:g}s", "alert_group_wait": "3s"}
    first = await paging_bot_with(postgres_url, slack, sim, pd, worker_id="a", **settings)
    ids = await spread_fleet(first, 20)
    lone = ids[1]
    (tenant,) = await tenants_of(first, [lone])
    sim.revoke(tenant, ["brincr:order"])
    try:
        await first.runtime.bot.scheduler.start()

        async def held() -> bool:
            async with first.runtime.bot.db.transaction() as session:
                return await session.get(AlertHold, lone) is not None

        await eventually(held, INTERVAL)
    finally:
        await first.close()  # the replica goes away during the hold
    assert top_level(slack) == []
    second = await paging_bot_with(postgres_url, slack, sim, pd, worker_id="b", **settings)
    try:
        await second.runtime.bot.scheduler.start()
        await eventually(lambda: _true(len(top_level(slack)) == 1), 10)
        await eventually(lambda: _true(pd.actions() == ["trigger"]), 10)
        await eventually(lambda: quiet(second), 10)
    finally:
        await second.close()
    assert len(top_level(slack)) == 1 and pd.actions() == ["trigger"]


async def test_a_release_cut_before_it_commits_leaves_the_hold_for_the_next_replica(
    db: Database,
) -> None:
    now = utcnow()
    async with db.transaction() as session:
        customer = await add_customer(
            NewCustomer("12345678", "Klant", Environment.PRODUCTION, "t-1", None),
            session=session, state=State.PENDING,
        )  # fmt: skip
        assert await stored_holds.add_hold(customer.id, "k", now, now, session=session)
        assert not await stored_holds.add_hold(customer.id, "k", now, now, session=session)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            assert await stored_holds.take_due(utcnow(), session=session) == customer.id
            raise RuntimeError("the replica dies here")
    async with db.transaction() as session:
        assert await stored_holds.take_due(utcnow(), session=session) == customer.id
    async with db.transaction() as session:
        assert await stored_holds.take_due(utcnow(), session=session) is None


async def test_one_look_per_cause_and_environment_per_interval(db: Database) -> None:
    now = utcnow()
    every = timedelta(minutes=15)
    async with db.transaction() as session:
        assert await stored_holds.claim_look("group:production:x", now, every, session=session)
        assert not await stored_holds.claim_look("group:production:x", now, every, session=session)
        assert await stored_holds.claim_look("group:sandbox:x", now, every, session=session)
        later = now + every
        assert await stored_holds.claim_look("group:production:x", later, every, session=session)


async def test_singles_with_one_cause_count_towards_a_group_that_folds_them_in(
    bot: BotHarness, slack: FakeSlack, sim: Simulator
) -> None:
    """Whatever the timing (here: no hold at all, each alerted alone as it broke), the fifth
    customer with the cause opens the group, and the four singles join it."""
    ids = await spread_fleet(bot, 8)
    tenants = await tenants_of(bot, ids)
    for customer_id, tenant in zip(ids[:5], tenants[:5], strict=True):
        sim.remove(tenant)
        await bot.runtime.bot.checker.check_many([customer_id])
    while await bot.runtime.bot.outbox.deliver_due():
        pass
    alerts = top_level(slack)
    assert len(alerts) == 5  # four singles, then the group
    assert all("Now part of the grouped incident (*5* customers" in text_of(a) for a in alerts[:4])
    assert "*5*" in text_of(alerts[4]) and await members_of_open_group(bot) == 5


async def test_a_customer_snoozed_during_its_hold_is_released_muted_without_an_alert(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, alert_group_wait="1m")
    try:
        ids = await spread_fleet(bot, 6)
        (tenant,) = await tenants_of(bot, [ids[0]])
        sim.remove(tenant)
        await bot.runtime.bot.checker.check_many([ids[0]])
        await bot.runtime.bot.alerts.snooze_customer(ids[0], timedelta(hours=1), "U0ADMIN")
        await make_holds_due(bot)
        muted = metric("brincr_alert_holds_total", outcome="muted")
        assert await bot.runtime.bot.alerts.holds.release_due() == {"muted": 1}
        assert metric("brincr_alert_holds_total", outcome="muted") == muted + 1
        while await bot.runtime.bot.outbox.deliver_due():
            pass
        assert top_level(slack) == []
        _, key = await bot.command("status 30000000")
        assert "Alert held" not in text_of((await bot.replies(key, 1, timeout=20))[0])
    finally:
        await bot.close()


async def test_failing_peers_count_before_their_own_threshold_and_join_when_they_reach_it(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    """FAILURE_THRESHOLD 2: the held customer fails twice; four peers failed once with the
    same error code. The release opens one group; the peers join at their second failure."""
    bot = await start_bot(sqlite_url, slack, sim, alert_group_wait="1m")
    checker = bot.runtime.bot.checker
    try:
        ids = await spread_fleet(bot, 8)
        tenants = await tenants_of(bot, ids)
        for tenant in tenants[:5]:
            sim.fault("production", "api", "status", status=404, tenant_id=tenant)
        await checker.check_many([ids[0]])
        await checker.check_many([ids[0]])  # failing: held
        await checker.check_many(ids[1:5])  # each below its threshold: still healthy
        await make_holds_due(bot)
        assert await bot.runtime.bot.alerts.holds.release_due() == {"group": 1}
        await checker.check_many(ids[1:5])  # now failing: they join the group
        assert await members_of_open_group(bot) == 5

        async def updated() -> bool:
            while await bot.runtime.bot.outbox.deliver_due():
                pass
            return any("*5*" in text_of(m) for m in top_level(slack))

        await eventually(updated, 10)  # the update waits for its message to be posted
    finally:
        await bot.close()
    (alert,) = top_level(slack)
    assert "*5*" in text_of(alert) and "404" in text_of(alert)
