"""``/brincr maintenance``: open (admins), end (admins) and list (everyone) maintenance
windows."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.clock import utcnow
from bot.domain import parse_duration
from bot.errors import UserError
from bot.maintenance import USAGE, Maintenance, parse_target
from bot.render import render_notice
from bot.render_maintenance import render_maintenance_list
from bot.slack_text import date
from handlers.deps import Deps
from handlers.router import Invocation


def register(app: AsyncApp, deps: Deps) -> None:
    maintenance = Maintenance(deps.services)
    permissions = deps.permissions

    def wake() -> None:
        deps.services.extras["outbox"].wake()

    async def command(inv: Invocation) -> None:
        if not inv.args:
            await inv.reply(render_maintenance_list(await maintenance.windows(), utcnow()))
            return
        if inv.args[0].lower() == "end":
            await permissions.require_admin(inv.user_id, "end maintenance windows")
            if len(inv.args) != 2:
                raise UserError("Which environment?", usage=USAGE)
            ended = await maintenance.end(parse_target(inv.args[1]), inv.user_id)
            wake()
            text = "Maintenance ended." if ended else "No maintenance window was on: nothing ended."
            await inv.reply(render_notice(text))
            return
        await permissions.require_admin(inv.user_id, "open maintenance windows")
        if len(inv.args) < 2:
            raise UserError("Which environment, and for how long?", usage=USAGE)
        environments = parse_target(inv.args[0])
        duration = parse_duration(inv.args[1])
        reason = inv.rest.split(maxsplit=2)[2] if len(inv.args) > 2 else None
        until = await maintenance.begin(environments, duration, reason, inv.user_id)
        wake()
        names = " and ".join(environments)
        await inv.reply(
            render_notice(f":construction: Maintenance for {names} until {date(until)}.")
        )

    deps.commands.add("maintenance", command)
