"""PagerDuty end to end: incidents through the outbox-like pager rows to a local Events API
stand-in (a real HTTP server), Slack through the fake Web API, buttons as signed requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.alerts.pager import PagerDutySender
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment
from bot.simulator import Simulator
from bot.slack.ids import Action
from storage.models import Incident, Notification, PagerEvent
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.harness import ADMIN, ALERTS, SCOPES, BotHarness, start_bot, text_of

SANDBOX_ALERTS = "C0SANDBOX"


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as fake:
        yield fake


def paging(pd: FakePagerDuty, **overrides: Any) -> dict[str, Any]:
    values = {
        "pagerduty_routing_key": ROUTING_KEY,
        "pagerduty_events_url": pd.url,
        "alert_repeat": "1h",
        "sandbox_alert_channel": SANDBOX_ALERTS,
    }
    return {**values, **overrides}


def sender_of(bot: BotHarness) -> PagerDutySender:
    sender = bot.runtime.bot.pager
    assert sender is not None
    return sender


async def check(bot: BotHarness, *ids: int) -> None:
    await bot.runtime.bot.checker.check_many(list(ids))
    await deliver(bot)


async def deliver(bot: BotHarness) -> None:
    while await bot.runtime.bot.outbox.deliver_due():
        pass
    await page(bot)


async def page(bot: BotHarness) -> None:
    while await sender_of(bot).deliver_due():
        pass


async def make_due(bot: BotHarness) -> None:
    """Let time pass for the rows (pager and Slack) waiting for a retry."""
    async with bot.runtime.bot.db.transaction() as session:
        await session.execute(update(PagerEvent).values(next_attempt_at=utcnow()))
        await session.execute(update(Notification).values(next_attempt_at=utcnow()))


async def pager_rows(bot: BotHarness) -> list[PagerEvent]:
    async with bot.runtime.bot.db.transaction() as session:
        return list(await session.scalars(select(PagerEvent).order_by(PagerEvent.id)))


async def open_incident(bot: BotHarness) -> Incident:
    async with bot.runtime.bot.db.transaction() as session:
        return (await session.scalars(select(Incident).where(Incident.resolved_at.is_(None)))).one()


async def test_trigger_acknowledge_resolve_reach_pagerduty_once_each_through_a_slack_outage_and_a_restart(  # noqa: E501
    database_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    bot = await start_bot(database_url, slack, sim, **paging(pd))
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    await check(bot, cid)
    slack.fail("chat.postMessage", status=503)  # Slack is down: the page must not wait
    sim.revoke(tenant, ["brincr:order"])
    await check(bot, cid)
    await check(bot, cid)
    assert pd.actions() == ["trigger"]
    (trigger,) = pd.events
    summary = trigger["payload"]["summary"]
    assert "Bouwbedrijf" in summary and "12345678" in summary and "production" in summary
    assert "brincr:order" in summary
    assert trigger["payload"]["severity"] == "error"
    assert trigger["routing_key"] == ROUTING_KEY
    await bot.close()  # a restart, with the Slack alert still undelivered

    slack.clear_failures()
    bot = await start_bot(database_url, slack, sim, worker_id="after-restart", **paging(pd))
    try:
        await make_due(bot)
        await deliver(bot)
        (alert,) = [m for m in slack.messages(ALERTS) if "thread_ts" not in m]
        incident = await open_incident(bot)
        await bot.action(Action.ACKNOWLEDGE, str(incident.id), user=ADMIN, ephemeral=False)
        await bot.action(
            Action.ACKNOWLEDGE, str(incident.id), user=ADMIN, ephemeral=False
        )  # a double click
        await bot.slack.wait_for("response_url", 1)
        await _until(bot, lambda: pd.actions() == ["trigger", "acknowledge"])
        sim.approve(tenant, "production", ["brincr:country", "brincr:category", "brincr:order"])
        await check(bot, cid)
        await check(bot, cid)
        await deliver(bot)
        key = trigger["dedup_key"]
        assert pd.actions(key) == ["trigger", "acknowledge", "resolve"]
        assert pd.actions() == ["trigger", "acknowledge", "resolve"]
        assert [r.status for r in await pager_rows(bot)] == ["sent", "sent", "sent"]
        top = slack.messages(ALERTS)[0]
        assert top["ts"] == alert["ts"] and "Resolved" in text_of(top)
    finally:
        await bot.close()


async def _until(bot: BotHarness, done: Any) -> None:
    for _ in range(200):
        await deliver(bot)
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not delivered")


async def test_the_trigger_links_back_to_the_slack_alert_and_a_5xx_is_retried(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        pd.fail(503)  # the first attempt: PagerDuty has trouble
        sim.remove(tenant)
        await check(bot, cid)
        (row,) = await pager_rows(bot)
        assert row.status == "pending" and row.attempts == 1 and "503" in (row.last_error or "")
        await make_due(bot)
        await page(bot)
        (trigger,) = pd.events
        (alert,) = slack.messages(ALERTS)
        assert trigger["links"][0]["href"].endswith(alert["ts"].replace(".", ""))
        assert ALERTS in trigger["links"][0]["href"]
    finally:
        await bot.close()


async def test_a_rate_limited_event_waits_minutes_and_is_sent_once_by_two_replicas(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd))
    other = await start_bot(sqlite_url, slack, sim, worker_id="replica-2", **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        pd.fail(429)
        sim.remove(tenant)
        await check(bot, cid)
        (row,) = await pager_rows(bot)
        assert (row.status, row.attempts) == ("pending", 0)  # a rate limit is not an attempt
        assert 55 < (row.next_attempt_at - utcnow()).total_seconds() <= 60  # no Retry-After
        assert await sender_of(bot).deliver_due() == 0  # not due yet
        await make_due(bot)
        sent = await asyncio.gather(sender_of(bot).deliver_due(), sender_of(other).deliver_due())
        assert sum(sent) == 1
        assert pd.actions() == ["trigger"]
        assert pd.requests == 2  # the 429 and the one that went through
    finally:
        await other.close()
        await bot.close()


async def test_a_resolve_never_overtakes_its_trigger_that_is_waiting_for_a_retry(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        pd.fail(503)
        sim.remove(tenant)
        await check(bot, cid)  # the trigger fails once and waits out its backoff
        sim.approve(tenant, "production", list(SCOPES))
        await check(bot, cid)  # recovered: the resolve is due now, the trigger is not
        assert [(r.action, r.status) for r in await pager_rows(bot)] == [
            ("trigger", "pending"), ("resolve", "pending")]  # fmt: skip
        assert pd.actions() == []
        await make_due(bot)
        await page(bot)
        assert pd.actions() == ["trigger", "resolve"]
    finally:
        await bot.close()


async def test_a_rate_limited_event_waits_as_long_as_retry_after_says(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        pd.fail(429, retry_after=900)
        sim.remove(tenant)
        await check(bot, cid)
        (row,) = await pager_rows(bot)
        assert (row.status, row.attempts) == ("pending", 0)
        assert 890 < (row.next_attempt_at - utcnow()).total_seconds() <= 900
    finally:
        await bot.close()


async def test_an_outage_never_makes_the_sender_give_an_event_up(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        pd.fail(503, times=40)
        sim.remove(tenant)
        await check(bot, cid)
        for _ in range(39):
            await make_due(bot)
            await page(bot)
        (row,) = await pager_rows(bot)
        assert (row.status, row.attempts) == ("pending", 40)
        assert 0 < (row.next_attempt_at - utcnow()).total_seconds() <= 600  # capped at 10 min
        await make_due(bot)
        await page(bot)
        assert pd.actions() == ["trigger"]
        assert [r.status for r in await pager_rows(bot)] == ["sent"]
    finally:
        await bot.close()


@pytest.mark.expected_errors("PagerDuty refused")
async def test_an_event_pagerduty_refuses_fails_at_once_with_one_error_line(
    sqlite_url: str,
    slack: FakeSlack,
    sim: Simulator,
    pd: FakePagerDuty,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd, pagerduty_routing_key="too-short"))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        sim.remove(tenant)
        with caplog.at_level(logging.ERROR, logger="bot.alerts.pager"):
            await check(bot, cid)
            await make_due(bot)
            await page(bot)
        (row,) = await pager_rows(bot)
        assert row.status == "failed" and "400" in (row.last_error or "")
        assert pd.requests == 1  # never retried
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "refused" in errors[0].getMessage()
        assert "too-short" not in caplog.text  # the routing key is a secret
    finally:
        await bot.close()


async def test_a_sandbox_incident_pages_nobody_and_goes_to_the_sandbox_channel(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, alert_mention="S0ONCALL", **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("87654321", "Dev tenant", tenant_id=tenant,
                                     env=Environment.SANDBOX)  # fmt: skip
        sim.remove(tenant)
        await check(bot, cid)
        assert pd.events == [] and await pager_rows(bot) == []
        assert slack.messages(ALERTS) == []
        (alert,) = slack.messages(SANDBOX_ALERTS)
        assert "Dev tenant" in text_of(alert) and "subteam" not in text_of(alert)
        incident = await open_incident(bot)
        await bot.action(Action.ACKNOWLEDGE, str(incident.id), user=ADMIN, ephemeral=False)
        await _until(bot, lambda: "acknowledged by" in text_of(slack.messages(SANDBOX_ALERTS)[0]))
        assert pd.events == []
    finally:
        await bot.close()


async def test_a_production_incident_goes_to_the_alert_channel_mentioning_the_on_call_group(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, alert_mention="S0ONCALL", **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        sim.remove(tenant)
        await check(bot, cid)
        (alert,) = slack.messages(ALERTS)
        assert "<!subteam^S0ONCALL>" in text_of(alert)
        assert "<@U0ADMIN>" in text_of(alert)  # the account manager stays mentioned
        assert slack.messages(SANDBOX_ALERTS) == []
    finally:
        await bot.close()


async def test_an_upstream_incident_pages_once_not_per_customer(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, production_client_secret="wrong", **paging(pd))
    try:
        ids = [await bot.add_customer(f"{20000000 + i}", f"Klant {i}") for i in range(5)]
        await check(bot, *ids)
        await bot.runtime.bot.upkeep.upstream(utcnow())
        await bot.runtime.bot.upkeep.upstream(utcnow())
        await deliver(bot)
        (trigger,) = pd.events
        assert trigger["payload"]["severity"] == "critical"
        assert "app:production" in trigger["payload"]["summary"]
    finally:
        await bot.close()


async def test_forgetting_a_customer_resolves_its_page(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd))
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        sim.remove(tenant)
        await check(bot, cid)
        await bot.action(Action.FORGET_CONFIRM, "12345678", user=ADMIN)
        await _until(bot, lambda: pd.actions() == ["trigger", "resolve"])
    finally:
        await bot.close()


async def test_an_unreachable_pagerduty_is_retried_with_backoff_and_nothing_is_lost(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, **paging(pd))
    try:
        url = pd.url
        await pd.stop()  # PagerDuty unreachable: connection refused
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        sim.remove(tenant)
        await check(bot, cid)
        (row,) = await pager_rows(bot)
        assert row.status == "pending" and row.attempts >= 1
        assert 0 < (row.next_attempt_at - utcnow()).total_seconds() < 60  # seconds, not minutes
        again = FakePagerDuty()
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        await again.start_on(port)
        try:
            await make_due(bot)
            await page(bot)
            assert again.actions() == ["trigger"]
        finally:
            await again.stop()
    finally:
        await bot.close()
