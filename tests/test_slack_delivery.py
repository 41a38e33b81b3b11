"""Alerts survive Slack trouble, end to end: the whole bot, a fake Slack Web API that refuses
the alert channel, the Visma/Brincr stand-in. Readiness stays about this replica."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

import bot.outbox
import bot.sending
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack, SlackCall
from bot.outbox import enqueue
from bot.simulator import Simulator
from bot.web.metrics import REFRESH
from tests.harness import ALERTS, SCOPES, BotHarness, start_bot, text_of

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
GONE = "U0GONE"  # a deactivated account manager


class Clock:
    """Stands in for the senders' clock (bot.outbox, bot.sending): a 15-minute backoff
    passes at once."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(bot.outbox, "utcnow", fake)
    monkeypatch.setattr(bot.sending, "utcnow", fake)
    return fake


@pytest.fixture
async def running(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, clock: Clock
) -> AsyncIterator[BotHarness]:
    # These tests wake and drive the outbox sender themselves (deliver_due): it runs on
    # their loop, not in a check engine process where a second sender would race them.
    harness = await start_bot(sqlite_url, slack, sim, schedule=True)
    yield harness
    await harness.close()


def _refused(channel: str, error: str) -> Any:
    def match(call: SlackCall) -> bool:
        answer = call.response or {}
        return call.params.get("channel") == channel and answer.get("error") == error

    return match


async def _ready(bot: BotHarness) -> dict[str, Any]:
    response = await bot.http.get(bot.url + "/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _metrics(bot: BotHarness) -> str:
    """A scrape after the database gauges' cache ran out (they are read once a minute)."""
    REFRESH.at.clear()
    return (await bot.http.get(bot.url + "/metrics")).text


async def _next_attempt(bot: BotHarness, clock: Clock) -> None:
    clock.now += timedelta(minutes=15)  # the longest backoff
    bot.runtime.bot.outbox.wake()


@pytest.mark.expected_errors("not_in_channel", "invalid_auth", "user_disabled", "invalid_blocks")
async def test_an_alert_slack_refuses_is_delivered_exactly_once_after_the_fix(
    running: BotHarness, clock: Clock
) -> None:
    bot, slack = running, running.slack
    slack.fail("chat.postMessage", error="not_in_channel", channel=ALERTS)
    slack.fail("chat.postMessage", error="user_disabled", channel=GONE)
    slack.fail("chat.postMessage", error="invalid_blocks", channel="C0BUG", times=1)
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=TENANT)
    async with bot.runtime.bot.db.transaction() as session:
        await enqueue(session, kind="dm", channel_id=GONE, text="your customer is failing")
        await enqueue(session, kind="post", channel_id="C0BUG", text="a malformed message")
    await bot.runtime.bot.checker.check_many([cid])
    bot.sim.revoke(TENANT, ["brincr:order"])
    await bot.runtime.bot.checker.check_many([cid])
    bot.runtime.bot.outbox.wake()
    await slack.wait_for("chat.postMessage", predicate=_refused(ALERTS, "not_in_channel"))
    await slack.wait_for("chat.postMessage", predicate=_refused(GONE, "user_disabled"))
    await slack.wait_for("chat.postMessage", predicate=_refused("C0BUG", "invalid_blocks"))

    ready = await _ready(bot)  # a refused channel, a dead DM, a bug: this replica serves
    assert set(ready["checks"]) == {"database", "scheduler"}
    metrics = await _metrics(bot)
    assert (
        'brincr_slack_delivery_failing{channel="C0ALERTS",error="not_in_channel",'
        'given_up="false"} 1.0' in metrics
    )
    assert 'channel="U0GONE",error="user_disabled"' in metrics
    _, key = await bot.command("status 12345678")
    status = text_of(await bot.reply(key))
    assert "alerts to <#C0ALERTS> are failing: `not_in_channel` since" in status
    assert "DMs to <@U0GONE> are failing: `user_disabled`" in status

    slack.clear_failures()  # someone invited the bot; now the token is revoked
    slack.fail("chat.postMessage", error="invalid_auth", channel=ALERTS)
    slack.fail("chat.postMessage", error="user_disabled", channel=GONE)
    await _next_attempt(bot, clock)
    await slack.wait_for("chat.postMessage", predicate=_refused(ALERTS, "invalid_auth"))
    await _ready(bot)
    assert 'channel="C0ALERTS",error="invalid_auth"' in await _metrics(bot)

    slack.clear_failures()  # the right token is set; the DM target stays deactivated
    slack.fail("chat.postMessage", error="user_disabled", channel=GONE)
    await _next_attempt(bot, clock)
    await slack.wait_for("chat.postMessage", predicate=lambda c: not c.failed)
    assert await bot.runtime.bot.outbox.deliver_due() == 0  # nothing left that could repeat it
    (alert,) = slack.messages(ALERTS)
    assert "brincr:order" in text_of(alert)

    bot.sim.approve(TENANT, "production", list(SCOPES))  # its follow-ups go in its thread
    await bot.runtime.bot.checker.check_many([cid])
    bot.runtime.bot.outbox.wake()
    await slack.wait_for("chat.update", predicate=lambda c: not c.failed)
    await slack.wait_for("chat.postMessage", 2, predicate=lambda c: not c.failed)
    top, reply = slack.messages(ALERTS)
    assert top["ts"] == alert["ts"] and reply["thread_ts"] == alert["ts"]
    metrics = await _metrics(bot)
    assert 'channel="C0ALERTS"' not in metrics and 'channel="U0GONE"' in metrics
    await _ready(bot)
