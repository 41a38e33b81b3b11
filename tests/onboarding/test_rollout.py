"""Scope rollouts end to end: the whole bot against the Visma/Brincr stand-in (which refuses
a token request naming a scope the tenant has not switched ON, without saying which), the
fake Slack Web API, signed commands through Bolt, the stand-in's request counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, func, select

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment
from bot.fleet.digest import build_digest
from bot.fleet.render_digest import render_digest
from bot.simulator import Simulator
from storage.models import AuditEntry, Customer, Incident, Notification
from storage.statuses import NotificationStatus
from tests.conftest import _truncate
from tests.harness import ADMIN, ALERTS, SUPPORT, BotHarness, eventually, start_bot, text_of

REQUIRED = ("brincr:country", "brincr:category")
NEW = "brincr:order"
ONBOARDING = "C0ONBOARD"


def rollout_settings(**extra: Any) -> dict[str, Any]:
    return {
        "brincr_scopes": " ".join(REQUIRED),
        "brincr_rollout_scopes": NEW,
        "onboarding_channel": ONBOARDING,
        **extra,
    }


@pytest.fixture
async def bot(sqlite_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    sim.set_options(name_scope_in_error=False)  # Visma usually does not say which scope
    harness = await start_bot(sqlite_url, slack, sim, api_tokens="rollout-api-token-0123",
                              **rollout_settings())  # fmt: skip
    yield harness
    await harness.close()


async def customer_row(bot: BotHarness, customer_id: int) -> Customer:
    async with bot.runtime.bot.db.transaction() as session:
        found = await session.get(Customer, customer_id)
        assert found is not None
        return found


async def deliver(bot: BotHarness) -> None:
    """Every outbox row delivered (by this call or by the running sender)."""

    async def none_pending() -> bool:
        while await bot.runtime.bot.outbox.deliver_due():
            pass
        async with bot.runtime.bot.db.transaction() as session:
            pending = await session.scalar(
                select(func.count()).where(Notification.status == NotificationStatus.PENDING)
            )
        return pending == 0

    await eventually(none_pending)


async def test_a_customer_lacking_only_the_rollout_scope_stays_healthy_and_quiet(
    bot: BotHarness,
) -> None:
    old = await bot.add_customer("61000001", "Oude Klant", approve=REQUIRED)
    new = await bot.add_customer("61000002", "Nieuwe Klant", approve=(*REQUIRED, NEW))
    checker = bot.runtime.bot.checker
    await checker.check_many([old, new])
    await deliver(bot)
    lacking, switched = await customer_row(bot, old), await customer_row(bot, new)
    assert lacking.state == switched.state == "healthy"
    assert lacking.rollout_missing_scopes == NEW and switched.rollout_missing_scopes == ""
    assert bot.slack.messages(ALERTS) == []
    async with bot.runtime.bot.db.transaction() as session:
        assert (await session.scalar(select(Incident))) is None

    _, key = await bot.command("status 61000001")
    status = text_of(await bot.reply(key))
    assert f"`{NEW}` not switched ON yet (rollout" in status
    _, key = await bot.command("history 61000001")
    assert "switched" not in text_of(await bot.reply(key))  # the first answer is no switch
    _, key = await bot.command("status 61000002")
    assert f"`{NEW}` switched ON (rollout)" in text_of(await bot.reply(key))

    headers = {"Authorization": "Bearer rollout-api-token-0123"}
    detail = (await bot.http.get(f"{bot.url}/api/v1/customers/61000001", headers=headers)).json()
    assert detail["state"] == "healthy" and detail["rollout_missing_scopes"] == [NEW]
    listing = (await bot.http.get(f"{bot.url}/api/v1/customers", headers=headers)).json()
    assert [c["rollout_missing_scopes"] for c in listing["customers"]] == [[NEW], []]


async def test_request_counts_per_kind_of_customer(bot: BotHarness) -> None:
    """Switched ON: 1 token + 1 probe a check. Known not to have it: 1 + 1, and once an hour
    1 extra token request (the refused ask for the rollout scope)."""
    sim, checker = bot.sim, bot.runtime.bot.checker
    old = await bot.add_customer("61000011", "Oud", approve=REQUIRED, tenant_id=TENANT_OLD)
    new = await bot.add_customer("61000012", "Nieuw", approve=(*REQUIRED, NEW),
                                 tenant_id=TENANT_NEW)  # fmt: skip
    await checker.check_many([old, new])  # first ask: the refusal, then required only
    assert sim.counters.token_requests(tenant_id=TENANT_OLD) == 2
    assert sim.counters.token_requests(tenant_id=TENANT_NEW) == 1
    sim.counters.reset()
    for _ in range(3):  # scheduled checks within the hour
        await checker.check_many([old, new])
    assert sim.counters.token_requests(tenant_id=TENANT_OLD) == 3
    assert sim.counters.api_requests(tenant_id=TENANT_OLD) == 3
    assert sim.counters.token_requests(tenant_id=TENANT_NEW) == 3
    assert sim.counters.api_requests(tenant_id=TENANT_NEW) == 3
    async with bot.runtime.bot.db.transaction() as session:
        row = await session.get(Customer, old)
        assert row is not None and row.rollout_asked_at is not None
        row.rollout_asked_at -= timedelta(hours=1, seconds=1)  # an hour has passed
    sim.counters.reset()
    await checker.check_many([old])
    assert sim.counters.token_requests(tenant_id=TENANT_OLD) == 2  # asked again, hourly
    assert sim.counters.api_requests(tenant_id=TENANT_OLD) == 1


TENANT_OLD = "11111111-1111-4111-8111-111111111111"
TENANT_NEW = "22222222-2222-4222-8222-222222222222"


async def test_a_switch_on_is_seen_by_a_check_by_hand_and_noted_in_history_and_tracker(
    bot: BotHarness,
) -> None:
    cid = await bot.add_customer("61000021", "Aanzetter", approve=REQUIRED, tenant_id=TENANT_OLD)
    other = await bot.add_customer("61000022", "Later", approve=REQUIRED)
    await bot.runtime.bot.checker.check_many([cid, other])
    rollout = bot.runtime.bot.rollout
    assert await rollout.tracker_tick() == 1
    assert await rollout.tracker_tick() == 0  # posted once
    await deliver(bot)
    (tracker,) = bot.slack.messages(ONBOARDING)
    assert f"`{NEW}`: 0 of 2 production customers switched it ON (0 %)" in text_of(tracker)

    bot.sim.approve(TENANT_OLD, "production", [*REQUIRED, NEW])
    await bot.runtime.bot.checker.check_many([cid])
    assert (await customer_row(bot, cid)).rollout_missing_scopes == NEW  # not asked: < 1 h
    _, key = await bot.command("check 61000021")
    reply = text_of(await bot.reply(key, 2))
    assert f"`{NEW}` switched ON (rollout)" in reply
    assert await rollout.tracker_tick() == 1  # the count changed: updated in place
    await deliver(bot)
    messages = bot.slack.messages(ONBOARDING)
    assert "1 of 2 production customers" in text_of(messages[0])
    thread = [m for m in messages if m.get("thread_ts") == tracker["ts"]]
    assert len(thread) == 1 and "*Aanzetter* (KvK 61000021) switched" in text_of(thread[0])
    assert f"<@{ADMIN}>" in text_of(thread[0])  # its account manager
    _, key = await bot.command("history 61000021")
    assert f"The customer switched `{NEW}` ON" in text_of(await bot.reply(key))

    bot.sim.revoke(TENANT_OLD, [NEW])  # and OFF again: a note, no incident
    await bot.runtime.bot.checker.check_customer(cid)
    await deliver(bot)
    assert (await customer_row(bot, cid)).state == "healthy"
    assert bot.slack.messages(ALERTS) == []
    notes = [m for m in bot.slack.messages(ONBOARDING) if m.get("thread_ts") == tracker["ts"]]
    assert "OFF again" in text_of(notes[-1])


async def test_a_required_scope_lost_during_a_rollout_alerts_as_today(bot: BotHarness) -> None:
    cid = await bot.add_customer("61000031", "Kwijt", approve=REQUIRED, tenant_id=TENANT_OLD)
    await bot.runtime.bot.checker.check_many([cid])
    bot.sim.revoke(TENANT_OLD, ["brincr:category"])
    await bot.runtime.bot.checker.check_customer(cid)
    await deliver(bot)
    row = await customer_row(bot, cid)
    assert row.state == "scopes_missing" and row.missing_scopes == "brincr:category"
    assert "brincr:category" in text_of(bot.slack.messages(ALERTS)[0])


async def test_rollout_command_and_reminders(bot: BotHarness) -> None:
    for i in range(3):
        await bot.add_customer(f"6100004{i}", f"Klant {i}", approve=REQUIRED)
    await bot.add_customer("61000049", "Zonder Beheerder", approve=REQUIRED, account_manager=None)
    async with bot.runtime.bot.db.transaction() as session:
        ids = list(await session.scalars(select(Customer.id)))
    await bot.runtime.bot.checker.check_many(ids)

    _, key = await bot.command("rollout", user=SUPPORT)
    text = text_of(await bot.reply(key))
    assert "0 of 4 production customers switched it ON" in text and "Klant 2" in text
    _, key = await bot.command("list rollout")
    assert "Customers: rollout (4 of 4)" in text_of(await bot.reply(key))

    await bot.event({"type": "app_home_opened", "user": SUPPORT, "tab": "home"})
    (home,) = await bot.slack.wait_for("views.publish")
    assert "4 customers have not switched the new scopes ON yet" in text_of(home.params["view"])
    async with bot.runtime.bot.db.transaction() as session:
        digest = await build_digest(session, utcnow(), stale_after=timedelta(days=7))
    digest_text = text_of(render_digest(digest, ZoneInfo("Europe/Amsterdam")).kwargs())
    assert "Scope rollout: not switched ON yet" in digest_text and "Klant 1" in digest_text

    _, key = await bot.command("rollout remind", user=SUPPORT)
    assert "Only bot admins may remind account managers" in text_of(await bot.reply(key))
    _, key = await bot.command("rollout remind", user=ADMIN)
    reply = text_of(await bot.reply(key))
    assert f"Reminded 1 account managers: <@{ADMIN}> (3)" in reply
    assert "Zonder Beheerder" in reply  # no account manager: listed for the admin
    await deliver(bot)
    (dm,) = await bot.slack.wait_for(
        "chat.postMessage", predicate=lambda c: c.params["channel"] == ADMIN
    )
    dm_text = text_of(dm.params)
    assert "Klant 0" in dm_text and "My apps" in dm_text and "Mijn" not in dm_text
    assert "zet deze rechten (scopes) weer op *ON*" in dm_text  # Dutch and English steps
    _, key = await bot.command("rollout remind", user=ADMIN)
    assert "already reminded today" in text_of(await bot.reply(key))
    async with bot.runtime.bot.db.transaction() as session:
        audited = list(await session.scalars(select(AuditEntry.action)))
    assert audited.count("rollout-remind") == 2


async def test_from_the_deadline_on_the_rollout_scope_is_required(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    sim.set_options(name_scope_in_error=False)
    later = (utcnow() + timedelta(days=10)).date()
    settings = rollout_settings(brincr_rollout_deadline=later.isoformat())
    bot = await start_bot(sqlite_url, slack, sim, **settings)
    try:
        ids = [
            await bot.add_customer(f"6100005{i}", f"Laat {i}", approve=REQUIRED) for i in range(5)
        ]
        checker, rollout = bot.runtime.bot.checker, bot.runtime.bot.rollout
        await checker.check_many(ids)
        assert await rollout.tracker_tick() == 1
        await deliver(bot)
        rows = [await customer_row(bot, i) for i in ids]
        assert {r.state for r in rows} == {"healthy"}
        assert "deadline" in text_of(bot.slack.messages(ONBOARDING)[0])

        # the deadline comes (the operator's date, in TIMEZONE)
        bot.runtime.bot.settings.brincr_rollout_deadline = (utcnow() - timedelta(days=1)).date()
        sim.counters.reset()
        await checker.check_many(ids)
        assert sim.counters.token_requests() == 5  # known missing: no request to find it again
        await checker.check_many(ids)
        await deliver(bot)
        rows = [await customer_row(bot, i) for i in ids]
        assert {r.state for r in rows} == {"scopes_missing"}
        assert {r.missing_scopes for r in rows} == {NEW}
        alerts = [m for m in bot.slack.messages(ALERTS) if "thread_ts" not in m]
        assert len(alerts) == 1 and NEW in text_of(alerts[0])  # one grouped incident
        assert await rollout.tracker_tick() == 2  # the tracker's final count and note
        assert await rollout.tracker_tick() == 0
        await deliver(bot)
        thread = [m for m in bot.slack.messages(ONBOARDING) if "thread_ts" in m]
        assert "The deadline has come" in text_of(thread[-1])
    finally:
        await bot.close()


@pytest.mark.postgres
async def test_two_replicas_post_one_tracker_and_update_it_once_per_change(
    postgres_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    _truncate(postgres_url)
    sim.set_options(name_scope_in_error=False)
    one = await start_bot(postgres_url, slack, sim, worker_id="one", **rollout_settings())
    two = await start_bot(postgres_url, slack, sim, worker_id="two", **rollout_settings())
    try:
        ids = [await one.add_customer(f"6100007{i}", f"Replica {i}", approve=REQUIRED,
                                      tenant_id=f"7777777{i}-7777-4777-8777-777777777777")
               for i in range(3)]  # fmt: skip
        await one.runtime.bot.checker.check_many(ids)
        ticks = [one.runtime.bot.rollout.tracker_tick, two.runtime.bot.rollout.tracker_tick]
        posted = await asyncio.gather(*(tick() for tick in ticks * 3))
        assert sum(posted) == 1
        sim.approve("77777770-7777-4777-8777-777777777777", "production", [*REQUIRED, NEW])
        await two.runtime.bot.checker.check_customer(ids[0])
        updated = await asyncio.gather(*(tick() for tick in ticks * 3))
        assert sum(updated) == 1  # one update, from one replica
        await deliver(one)
        await deliver(two)
        tops = [m for m in slack.messages(ONBOARDING) if "thread_ts" not in m]
        assert len(tops) == 1 and "1 of 3 production customers" in text_of(tops[0])
    finally:
        await one.close()
        await two.close()


async def test_reminders_7_and_1_days_before_the_deadline_and_a_final_note_when_all_have_it(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    sim.set_options(name_scope_in_error=False)
    deadline = (utcnow() + timedelta(days=30)).date()
    settings = rollout_settings(brincr_rollout_deadline=deadline.isoformat())
    bot = await start_bot(sqlite_url, slack, sim, **settings)
    try:
        cid = await bot.add_customer("61000081", "Herinnerd", approve=REQUIRED,
                                     tenant_id=TENANT_OLD)  # fmt: skip
        await bot.runtime.bot.checker.check_many([cid])
        rollout = bot.runtime.bot.rollout
        now = datetime.combine(utcnow().date(), time(11), UTC)  # the same day in Amsterdam
        assert await rollout.tracker_tick(now) == 1
        assert await rollout.tracker_tick(now + timedelta(days=22)) == 0  # 8 days before
        assert await rollout.tracker_tick(now + timedelta(days=23, hours=1)) == 2  # 7 days
        assert await rollout.tracker_tick(now + timedelta(days=24)) == 0  # once
        assert await rollout.tracker_tick(now + timedelta(days=29, hours=1)) == 2  # 1 day
        assert await rollout.tracker_tick(now + timedelta(days=29, hours=2)) == 0
        bot.sim.approve(TENANT_OLD, "production", [*REQUIRED, NEW])
        await bot.runtime.bot.checker.check_customer(cid)
        assert await rollout.tracker_tick(now + timedelta(days=29, hours=3)) == 2  # final
        assert await rollout.tracker_tick(now + timedelta(days=29, hours=4)) == 0
        await deliver(bot)
        (tracker,) = [m for m in bot.slack.messages(ONBOARDING) if "thread_ts" not in m]
        assert "1 of 1 production customers switched it ON (100 %)" in text_of(tracker)
        thread = [text_of(m) for m in bot.slack.messages(ONBOARDING) if "thread_ts" in m]
        assert "is in 7 days" in thread[0] and "is tomorrow" in thread[1]
        assert "*Herinnerd* (KvK 61000081) switched" in thread[2]
        assert "Every customer switched it ON" in thread[3]
    finally:
        await bot.close()


async def test_a_new_customer_is_asked_to_switch_the_rollout_scopes_on_too(
    bot: BotHarness,
) -> None:
    from tests.onboarding.test_invite import invite_by_form

    message = text_of((await invite_by_form(bot)).params)
    for scope in (*REQUIRED, NEW):
        assert scope in message


async def test_finishing_moves_the_scope_into_brincr_scopes_and_the_tracker_gets_its_final_note(
    bot: BotHarness,
) -> None:
    done = await bot.add_customer("61000101", "Klaar", approve=(*REQUIRED, NEW))
    late = await bot.add_customer("61000102", "Te Laat", approve=REQUIRED)
    checker, rollout = bot.runtime.bot.checker, bot.runtime.bot.rollout
    await checker.check_many([done, late])
    assert await rollout.tracker_tick() == 1
    settings = bot.runtime.bot.settings  # the operator's change, as after a restart
    settings.brincr_scopes, settings.brincr_rollout_scopes = (*REQUIRED, NEW), ()
    await checker.check_many([done, late])
    await deliver(bot)
    finished, missing = await customer_row(bot, done), await customer_row(bot, late)
    assert finished.state == "healthy" and missing.state == "scopes_missing"
    assert finished.rollout_missing_scopes == missing.rollout_missing_scopes == ""
    assert [m for m in bot.slack.messages(ALERTS) if "Klaar" in text_of(m)] == []
    assert await rollout.tracker_tick() == 2  # the final count and note, once
    assert await rollout.tracker_tick() == 0
    await deliver(bot)
    thread = [text_of(m) for m in bot.slack.messages(ONBOARDING) if "thread_ts" in m]
    assert "now in `BRINCR_SCOPES`" in thread[-1] and "*1 of 2* production" in thread[-1]


async def test_a_tracker_tick_reads_the_customers_once_for_every_environment(
    bot: BotHarness,
) -> None:
    """At 50,000 customers every read of them counts: the tick posts or advances one tracker
    per environment from one read, not one read per tracker."""
    ids = [
        await bot.add_customer("61000031", "Productie", approve=REQUIRED),
        await bot.add_customer("61000032", "Proef", env=Environment.SANDBOX, approve=REQUIRED),
    ]
    await bot.runtime.bot.checker.check_many(ids)
    rollout = bot.runtime.bot.rollout
    reads: list[str] = []

    def counted(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "rollout_asked_at" in statement:
            reads.append(statement)

    engine = bot.runtime.bot.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        assert await rollout.tracker_tick() == 2  # a tracker per environment
        assert len(reads) == 1
        reads.clear()
        assert await rollout.tracker_tick() == 0  # both trackers looked at: nothing changed
        assert len(reads) == 1
    finally:
        event.remove(engine, "before_cursor_execute", counted)
