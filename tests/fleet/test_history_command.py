"""``/brincr history``: the customer's timeline through the real bot, from checks against the
stand-in, buttons pressed as signed requests, and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.fleet.render_history import when
from bot.simulator import Simulator
from bot.slack.ids import Action
from storage.models import AuditEntry, Incident, StateChange
from tests.harness import ADMIN, SCOPES, SUPPORT, BotHarness, eventually, start_bot, text_of

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
AMS = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
async def bot(database_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(database_url, slack, sim)
    yield harness
    await harness.close()


async def _check(bot: BotHarness, customer_id: int) -> None:
    await bot.runtime.bot.checker.check_customer(customer_id)
    while await bot.runtime.bot.outbox.deliver_due():
        pass


async def _actions_audited(bot: BotHarness, action: str) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        rows = await session.scalars(select(AuditEntry).where(AuditEntry.action == action))
        return len(rows.all())


async def test_history_shows_a_lost_scope_the_admins_acknowledge_and_the_recovery(
    bot: BotHarness,
) -> None:
    cid = await bot.add_customer("12345678", "Bouwbedrijf <De Vries>", tenant_id=TENANT)
    await _check(bot, cid)
    bot.sim.revoke(TENANT, ["brincr:order"])
    await _check(bot, cid)
    async with bot.runtime.bot.db.transaction() as session:
        incident = await session.scalar(select(Incident).where(Incident.resolved_at.is_(None)))
        assert incident is not None
    response, _ = await bot.action(Action.ACKNOWLEDGE, str(incident.id), user=ADMIN,
                                   ephemeral=False)  # fmt: skip
    assert response.status_code == 200

    async def acknowledged() -> bool:
        return await _actions_audited(bot, "acknowledge") == 1

    await eventually(acknowledged)
    bot.sim.approve(TENANT, "production", list(SCOPES))
    await _check(bot, cid)

    _, key = await bot.command("history 12345678", user=SUPPORT)
    reply = await bot.reply(key)
    text = text_of(reply)
    lost = text.index("*scopes_missing* (was healthy)")
    acked = text.index(f"<@{ADMIN}> acknowledged the incident")
    regained = text.index("*healthy* (was scopes_missing)")
    assert regained < acked < lost  # newest first
    assert "brincr:order" in text and "Incident resolved after" in text
    assert "Incident opened: *scopes_missing*" in text
    # Slack date tokens (each reader's own time zone), their fallback on TIMEZONE's clock
    today = utcnow().astimezone(AMS).strftime("%Y-%m-%d")
    assert text.count("<!date^") >= 5 and text.count(f"|{today} ") >= 5
    assert "CET>" in text or "CEST>" in text
    assert "times in your own time zone" in text
    assert when(utcnow(), AMS)[:15] in reply["text"]  # the notification text: TIMEZONE, named
    assert "&lt;De Vries&gt;" in reply["text"] and "<De Vries>" not in reply["text"]
    assert len(reply["blocks"]) <= 50
    assert not [b for b in reply["blocks"] if b["type"] == "actions"]  # one page only


async def test_history_pages_within_slacks_limits(bot: BotHarness) -> None:
    cid = await bot.add_customer("12345678", "Bouwbedrijf De Vries", tenant_id=TENANT)
    start = utcnow() - timedelta(days=2)
    async with bot.runtime.bot.db.transaction() as session:
        for i in range(45):
            state = "failing" if i % 2 else "healthy"
            at = start + timedelta(minutes=i)
            session.add(StateChange(customer_id=cid, at=at, from_state=None, to_state=state,
                                    reason="x" * 5000))  # fmt: skip
    _, key = await bot.command("history Bouwbedrijf")
    first = await bot.reply(key)
    assert len(first["blocks"]) <= 50
    for block in first["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    assert "1–20 of 46" in text_of(first)
    (nav,) = [b for b in first["blocks"] if b["type"] == "actions"]
    (older,) = nav["elements"]
    assert older["text"]["text"] == "Older ▶"
    _, key = await bot.action(Action.HISTORY_PAGE, older["value"])
    second = await bot.reply(key)
    assert "21–40 of 46" in text_of(second) and second.get("replace_original") is True
    labels = [e["text"]["text"] for b in second["blocks"] if b["type"] == "actions"
              for e in b["elements"]]  # fmt: skip
    assert labels == ["◀ Newer", "Older ▶"]


async def test_history_is_reachable_from_status_and_records_checks_by_hand(
    bot: BotHarness,
) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf De Vries", tenant_id=TENANT)
    _, key = await bot.command("check 12345678")
    status = await bot.reply(key, 2)
    buttons = [e for b in status["blocks"] if b["type"] == "actions" for e in b["elements"]]
    (history_button,) = [e for e in buttons if e["action_id"] == Action.HISTORY]
    _, key = await bot.action(Action.HISTORY, history_button["value"])
    text = text_of(await bot.reply(key))
    assert f"<@{SUPPORT}> checked by hand" in text
    assert "*healthy* (was pending)" in text


async def test_history_needs_a_customer(bot: BotHarness) -> None:
    _, key = await bot.command("history")
    assert "Which customer?" in text_of(await bot.reply(key))
    _, key = await bot.command("history 99999999")
    assert "no customer matches" in text_of(await bot.reply(key))


async def test_help_lists_history_and_digest(bot: BotHarness) -> None:
    _, key = await bot.command("help")
    text = text_of(await bot.reply(key))
    assert "`/brincr history <customer>`" in text and "`/brincr digest`" in text
