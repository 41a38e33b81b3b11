"""The weekly digest: what it says (from stored state, no upstream request), `/brincr digest`
for admins, and one post per schedule slot across replicas."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.domain.weekly import DAYS
from bot.fleet.digest import digest_tick, post_digest
from bot.onboarding.forms import InviteForm
from bot.onboarding.invitations import invite
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import Invitation, StateChange
from tests.conftest import _truncate
from tests.harness import (
    ADMIN,
    BOT_TOKEN,
    SCOPES,
    SIGNING_SECRET,
    SUPPORT,
    BotHarness,
    start_bot,
    text_of,
)
from tests.processes import free_port, serve, wait_ready

DIGEST = "C0DIGEST"
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
async def bot(database_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(database_url, slack, sim, digest_channel=DIGEST)
    yield harness
    await harness.close()


async def _deliver(bot: BotHarness, channel: str = DIGEST) -> None:
    """Deliver what is due; the running sender may be delivering it already: wait for it."""
    while await bot.runtime.bot.outbox.deliver_due():
        pass
    for _ in range(100):
        if bot.slack.messages(channel):
            return
        await asyncio.sleep(0.05)


async def _fleet(bot: BotHarness) -> None:
    """A healthy customer, one missing a scope, one revoked, and a stale invitation."""
    healthy = await bot.add_customer("10000001", "Gezond B.V.")
    missing = await bot.add_customer("10000002", "Scopeloos B.V.", approve=SCOPES[:2])
    revoked = await bot.add_customer("10000003", "Weg B.V.", approve=None)
    await bot.runtime.bot.checker.check_many([healthy, missing, revoked])
    form = InviteForm("10000004", "INV-DIGEST-1", "Wachtend B.V.", Environment.PRODUCTION,
                      "nl", None)  # fmt: skip
    await invite(bot.runtime.bot.services, form, invited_by=ADMIN, channel_id="C0SALES")
    async with bot.runtime.bot.db.transaction() as session:
        await session.execute(update(Invitation).values(created_at=utcnow() - timedelta(days=9)))


async def test_the_digest_names_who_needs_what_and_costs_no_upstream_request(
    bot: BotHarness, sim: Simulator
) -> None:
    await _fleet(bot)
    sim.counters.reset()
    assert await post_digest(bot.runtime.bot.services, utcnow())
    await _deliver(bot)
    (message,) = bot.slack.messages(DIGEST)
    text = text_of(message)
    assert "Scopes missing" in text and "*Scopeloos B.V.* (KvK 10000002): `brincr:order`" in text
    assert "Revoked: send a new invitation" in text and "*Weg B.V.* (KvK 10000003)" in text
    assert f"Invitations not approved yet, for <@{ADMIN}>" in text
    assert "*Wachtend B.V.* (KvK 10000004): waiting 9d" in text
    assert "*Gezond B.V.*" not in text
    # everything was added today: last week there were none, so each count is its change
    assert "*healthy*: 1 (+1 since last week)" in text
    assert "*invited*: 1 (+1 since last week)" in text
    assert "Incidents this week, total downtime" in text and "Scopeloos B.V." in text
    assert len(message["blocks"]) <= 50
    assert sim.counters.token_requests() == 0 and sim.counters.api_requests() == 0


HOSTILE_SCOPE = "x`<!channel>`y x`<https://evil.example/reauth|Re-approve>`y"


async def test_scope_names_from_upstream_reach_the_digest_inert(
    bot: BotHarness, sim: Simulator
) -> None:
    """Finding 1 (issue 19): a token endpoint naming hostile "scopes" pings and links nobody:
    only scopes the app asked for can be missing, and the names shown are escaped."""
    cid = await bot.add_customer("10000002", "Scopeloos B.V.")
    invalid = {"error": "invalid_scope", "scope": HOSTILE_SCOPE}
    sim.fault("production", "token", "answer", status=400, body=invalid)
    outcome = await bot.runtime.bot.checker.check_customer(cid)
    assert set(outcome.missing_scopes) <= set(SCOPES) and outcome.missing_scopes
    assert await post_digest(bot.runtime.bot.services, utcnow())
    await _deliver(bot)
    text = text_of(bot.slack.messages(DIGEST)[0])
    assert "*Scopeloos B.V.* (KvK 10000002): `brincr:" in text
    assert "<!channel>" not in text and "<https://evil" not in text and "evil" not in text


async def test_counts_compare_with_the_states_a_week_ago(bot: BotHarness) -> None:
    cid = await bot.add_customer("10000001", "Gezond B.V.")
    long_ago = utcnow() - timedelta(days=20)
    async with bot.runtime.bot.db.transaction() as session:
        await session.execute(update(StateChange).values(at=long_ago))
    await bot.runtime.bot.checker.check_customer(cid)  # pending -> healthy
    await post_digest(bot.runtime.bot.services, utcnow())
    await _deliver(bot)
    text = text_of(bot.slack.messages(DIGEST)[0])
    assert "*healthy*: 1 (+1 since last week)" in text
    assert "*pending*: 0 (-1 since last week)" in text
    assert "Total: 1 (±0)" in text
    assert "No customer needs action" in text


async def test_only_admins_post_the_digest_by_command(bot: BotHarness) -> None:
    _, key = await bot.command("digest", user=SUPPORT)
    assert "Only bot admins may post the digest" in text_of(await bot.reply(key))
    _, key = await bot.command("digest", user=ADMIN)
    assert f"<#{DIGEST}>" in text_of(await bot.reply(key))
    await _deliver(bot)
    assert len(bot.slack.messages(DIGEST)) == 1


async def test_without_a_digest_channel_the_command_says_how_to_set_it(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    harness = await start_bot(sqlite_url, slack, sim)
    try:
        _, key = await harness.command("digest", user=ADMIN)
        assert "DIGEST_CHANNEL" in text_of(await harness.reply(key))
        assert not await digest_tick(harness.runtime.bot.services)
    finally:
        await harness.close()


async def test_a_slot_is_posted_once_and_not_late(bot: BotHarness) -> None:
    services = bot.runtime.bot.services  # DIGEST_SCHEDULE: mon 09:00 Europe/Amsterdam
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=AMS).astimezone(UTC)
    assert not await digest_tick(services, monday - timedelta(minutes=1))  # last week's: late
    assert await digest_tick(services, monday + timedelta(minutes=1))
    assert not await digest_tick(services, monday + timedelta(minutes=2))
    assert not await digest_tick(services, monday + timedelta(hours=7))
    assert await digest_tick(services, monday + timedelta(days=7, seconds=5))


async def test_two_replicas_claim_each_slot_once(
    database_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    replicas = [
        await start_bot(database_url, slack, sim, digest_channel=DIGEST, worker_id=name)
        for name in ("replica-a", "replica-b")
    ]
    try:
        monday = datetime(2026, 11, 30, 9, 0, tzinfo=AMS).astimezone(UTC)
        ticks = [digest_tick(r.runtime.bot.services, monday + timedelta(seconds=s))
                 for s in range(10) for r in replicas]  # fmt: skip
        assert sum(await asyncio.gather(*ticks)) == 1
        for replica in replicas:
            await _deliver(replica)
        later = monday + timedelta(minutes=5)  # the slot is taken: no replica posts again
        assert not any(await asyncio.gather(*(digest_tick(r.runtime.bot.services, later)
                                              for r in replicas)))  # fmt: skip
        for replica in replicas:
            assert await replica.runtime.bot.outbox.deliver_due() == 0
        assert len(slack.messages(DIGEST)) == 1
    finally:
        for replica in replicas:
            await replica.close()


@pytest.mark.postgres
async def test_two_serve_processes_on_postgresql_post_the_digest_once(
    postgres_url: str, slack: FakeSlack, sim: Simulator, tmp_path: Path
) -> None:
    _truncate(postgres_url)
    db = Database(postgres_url)
    async with db.transaction() as session:  # no tenant: never checked, the state stays
        new = NewCustomer("60000001", "Scopeloos B.V.", Environment.PRODUCTION)
        customer = await add_customer(new, session=session, state=State.SCOPES_MISSING)
        customer.missing_scopes = "brincr:order"
    now = datetime.now(AMS) - timedelta(minutes=1)  # a slot that has just passed
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
        **sim.settings_env(),
        "DATABASE_URL": postgres_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "ALERT_CHANNEL": "C0ALERTS", "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "2s",
        "HOST": "127.0.0.1", "DIGEST_CHANNEL": DIGEST, "TIMEZONE": "Europe/Amsterdam",
        "DIGEST_SCHEDULE": f"{DAYS[now.weekday()]} {now:%H:%M}",
    }  # fmt: skip
    ports = [free_port(), free_port()]
    logs = [tmp_path / "replica-a.log", tmp_path / "replica-b.log"]
    processes = [serve({**env, "PORT": str(p)}, log) for p, log in zip(ports, logs, strict=True)]
    try:
        for port in ports:
            await wait_ready(port)
        for _ in range(100):  # the first tick of each runs at start
            if slack.messages(DIGEST):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # time for a second, wrong post to show up
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
    await db.close()
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    (digest,) = slack.messages(DIGEST)
    assert "*Scopeloos B.V.* (KvK 60000001): `brincr:order`" in text_of(digest)
    assert sum("digest enqueued" in log.read_text() for log in logs) == 1
