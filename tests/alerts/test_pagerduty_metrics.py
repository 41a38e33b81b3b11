"""What /metrics says about PagerDuty: the events waiting (backlog), given up on, sent, and
each failed attempt; read from a real scrape while the Events API stand-in refuses and
recovers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from bot.alerts.pager import PagerDutySender
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from bot.web.metrics import refresh_gauges
from storage.models import PagerEvent
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.harness import BotHarness, eventually, start_bot

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as fake:
        yield fake


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def scrape(bot: BotHarness) -> str:
    await refresh_gauges(bot.runtime.bot.db)
    return (await bot.http.get(bot.url + "/metrics")).text


def sender(bot: BotHarness) -> PagerDutySender:
    pager = bot.runtime.bot.pager
    assert pager is not None
    return pager


async def counted(permanent: str, expected: float) -> bool:
    return value("brincr_pagerduty_delivery_failures_total", permanent=permanent) == expected


async def sent_count(expected: float) -> bool:
    return value("brincr_pagerduty_sent_total") == expected


async def page(bot: BotHarness) -> None:
    """Make every waiting event due now and send what is due."""
    async with bot.runtime.bot.db.transaction() as session:
        await session.execute(update(PagerEvent).values(next_attempt_at=utcnow()))
    await sender(bot).deliver_due()


async def start(sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty) -> BotHarness:
    return await start_bot(
        sqlite_url, slack, sim, pagerduty_routing_key=ROUTING_KEY, pagerduty_events_url=pd.url,
        alert_repeat="1h",
    )  # fmt: skip


async def incident(bot: BotHarness, sim: Simulator) -> None:
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=TENANT)
    sim.remove(TENANT)
    await bot.runtime.bot.checker.check_many([cid])


@pytest.mark.expected_errors("PagerDuty refused")
async def test_a_retried_then_refused_event_shows_as_backlog_failures_and_given_up(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start(sqlite_url, slack, sim, pd)
    retried = value("brincr_pagerduty_delivery_failures_total", permanent="false")
    refused = value("brincr_pagerduty_delivery_failures_total", permanent="true")
    try:
        # The sender's own ticker runs too: whichever attempt comes first meets each fault.
        pd.fail(503)
        await incident(bot, sim)
        await sender(bot).deliver_due()
        await eventually(lambda: counted("false", retried + 1))
        text = await scrape(bot)
        assert "brincr_pagerduty_backlog 1.0" in text  # waiting for its retry
        assert "brincr_pagerduty_failed 0.0" in text
        pd.fail(400)
        await page(bot)
        await eventually(lambda: counted("true", refused + 1))
        text = await scrape(bot)
        assert "brincr_pagerduty_backlog 0.0" in text and "brincr_pagerduty_failed 1.0" in text
        assert pd.requests == 2
    finally:
        await bot.close()


async def test_a_sent_event_is_counted_and_leaves_no_backlog(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> None:
    bot = await start(sqlite_url, slack, sim, pd)
    sent = value("brincr_pagerduty_sent_total")
    try:
        await incident(bot, sim)
        await page(bot)
        await eventually(lambda: sent_count(sent + 1))
        text = await scrape(bot)
        assert "brincr_pagerduty_backlog 0.0" in text and "brincr_pagerduty_failed 0.0" in text
    finally:
        await bot.close()
