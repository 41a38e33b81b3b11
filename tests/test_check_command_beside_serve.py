"""``brincr-bot check`` is the same check as a scheduled one: run as a real process beside a
serving bot (one database, the stand-in, the fake Slack), what it finds opens and closes
incidents and approves invitations, and the serving bot's outbox posts the messages."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.onboarding.forms import InviteForm
from bot.onboarding.invitations import invite
from storage.models import Incident, Invitation
from tests.harness import (
    ADMIN,
    ALERTS,
    BOT_TOKEN,
    SCOPES,
    SIGNING_SECRET,
    SUPPORT_CHANNEL,
    BotHarness,
    eventually,
    text_of,
)

BIN = str(Path(sys.executable).with_name("brincr-bot"))
TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


async def cli_check(bot: BotHarness, *kvks: str) -> tuple[int, str]:
    """Run ``brincr-bot check`` in its own process with the serving bot's settings."""
    env = {
        **os.environ,
        **bot.sim.settings_env(),
        "DATABASE_URL": bot.runtime.settings.database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": bot.slack.api_url,
        "ALERT_CHANNEL": ALERTS,
        "BOT_ADMINS": ADMIN,
        "BRINCR_SCOPES": " ".join(SCOPES),
    }
    process = await asyncio.create_subprocess_exec(
        BIN, "check", *kvks, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode in (0, 1), err.decode()
    return process.returncode or 0, out.decode()


def alerts_in(bot: BotHarness) -> list[dict[str, Any]]:
    return [m for m in bot.slack.messages(ALERTS) if "thread_ts" not in m]


async def incidents(bot: BotHarness) -> list[Incident]:
    async with bot.runtime.bot.db.transaction() as session:
        return list(await session.scalars(select(Incident).order_by(Incident.id)))


async def test_a_lost_scope_found_by_the_cli_opens_the_incident_and_its_recovery_closes_it(
    bot: BotHarness,
) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=TENANT)
    code, out = await cli_check(bot, "12345678")
    assert code == 0 and "healthy" in out

    bot.sim.revoke(TENANT, ["brincr:order"])
    code, out = await cli_check(bot, "12345678")
    assert code == 1 and "scopes_missing" in out
    (incident,) = await incidents(bot)
    assert incident.resolved_at is None
    await eventually(lambda: _true(len(alerts_in(bot)) == 1), timeout=10)
    assert "brincr:order" in text_of(alerts_in(bot)[0])

    bot.sim.approve(TENANT, "production", list(SCOPES))
    code, out = await cli_check(bot, "12345678")
    assert code == 0 and "healthy" in out
    (incident,) = await incidents(bot)
    assert incident.resolved_at is not None

    def recovered() -> bool:
        return any("recovered" in text_of(m) for m in bot.slack.messages(ALERTS))

    await eventually(lambda: _true(recovered()), timeout=10)
    assert len(alerts_in(bot)) == 1  # updated in place, never posted twice


async def test_an_invitation_approved_through_a_cli_check_is_marked_approved(
    bot: BotHarness,
) -> None:
    form = InviteForm("12345678", "INV-CLI-0001", "Bouwbedrijf", None, "en", None)
    await invite(bot.runtime.bot.services, form, invited_by=ADMIN, channel_id=SUPPORT_CHANNEL)
    await eventually(lambda: _true(len(bot.slack.messages(SUPPORT_CHANNEL)) == 1), timeout=10)
    bot.sim.approve(TENANT, "production", list(SCOPES[:2]))  # one scope left OFF
    _, key = await bot.command(f"link 12345678 {TENANT}", user=ADMIN)
    assert "scopes_missing" in text_of(await bot.reply(key))
    bot.sim.approve(TENANT, "production", list(SCOPES))
    code, _ = await cli_check(bot, "12345678")
    assert code == 0
    async with bot.runtime.bot.db.transaction() as session:
        invitation = await session.scalar(select(Invitation))
        assert invitation is not None and invitation.status == "approved"

    def approved_shown() -> bool:
        return any("approved" in text_of(m).lower() for m in bot.slack.messages(SUPPORT_CHANNEL))

    await eventually(lambda: _true(approved_shown()), timeout=10)


async def _true(value: bool) -> bool:
    return value
