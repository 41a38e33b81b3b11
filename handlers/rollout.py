"""``/brincr rollout`` (progress of the scope rollout: everyone) and ``/brincr rollout remind``
(one DM per account manager: admins). The service is :mod:`bot.onboarding.rollout`; the
renderers :mod:`bot.onboarding.render_rollout`."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.core.errors import UserError
from bot.onboarding.render_rollout import render_remind_report, render_rollout
from handlers.router import CommandRouter, Invocation

USAGE = "`/brincr rollout` shows the progress; `/brincr rollout remind` reminds account managers"


async def rollout(inv: Invocation) -> None:
    if not inv.args:
        await inv.reply(render_rollout(await inv.bot.rollout.view()))
        return
    if [a.lower() for a in inv.args] != ["remind"]:
        raise UserError(f"`{inv.rest[:40]}` is not a rollout command", usage=USAGE)
    await inv.gate.require_admin(inv.user_id, "remind account managers")
    report = await inv.bot.rollout.remind(inv.user_id)
    await inv.reply(render_remind_report(report, inv.bot.settings.tz))


def register(app: AsyncApp, commands: CommandRouter) -> None:
    commands.add("rollout", rollout)
