"""``/brincr maintenance``: open (admins), end (admins) and list (everyone) planned-downtime
windows. The service is :class:`bot.alerts.maintenance.Maintenance`."""

from __future__ import annotations

from bot.alerts.maintenance import USAGE, parse_target
from bot.alerts.render_maintenance import render_maintenance_list
from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import parse_duration
from bot.slack.blocks import render_notice
from bot.slack.text import date
from handlers.router import CommandRouter, Invocation
from handlers.wiring import Listeners


async def maintenance(inv: Invocation) -> None:
    if not inv.args:
        await inv.reply(render_maintenance_list(await inv.bot.maintenance.windows(), utcnow()))
    elif inv.args[0].lower() == "end":
        await end(inv)
    else:
        await begin(inv)


async def end(inv: Invocation) -> None:
    await inv.gate.require_admin(inv.user_id, "end maintenance windows")
    if len(inv.args) != 2:
        raise UserError("Which environment?", usage=USAGE)
    ended = await inv.bot.maintenance.end(parse_target(inv.args[1]), inv.user_id)
    inv.bot.services.wake_outbox()
    text = "Maintenance ended." if ended else "No maintenance window was on: nothing ended."
    await inv.reply(render_notice(text))


async def begin(inv: Invocation) -> None:
    await inv.gate.require_admin(inv.user_id, "open maintenance windows")
    if len(inv.args) < 2:
        raise UserError("Which environment, and for how long?", usage=USAGE)
    environments = parse_target(inv.args[0])
    duration = parse_duration(inv.args[1])
    reason = inv.rest.split(maxsplit=2)[2] if len(inv.args) > 2 else None
    until = await inv.bot.maintenance.begin(environments, duration, reason, inv.user_id)
    inv.bot.services.wake_outbox()
    names = " and ".join(environments)
    await inv.reply(render_notice(f":construction: Maintenance for {names} until {date(until)}."))


def register(_on: Listeners, commands: CommandRouter) -> None:
    commands.add("maintenance", maintenance)
