"""Changing commands that need an admin: ``forget`` (with a confirmation button),
``snooze`` and ``unsnooze``. Each change is written to the audit log by the service."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.actions import Action
from bot.domain import parse_duration
from bot.errors import UserError
from bot.render import render_forget_confirm, render_notice
from bot.slack_text import date, escape
from handlers.deps import Deps
from handlers.router import Invocation, answers_user_errors
from storage.customers import CUSTOMER_USAGE

SNOOZE_USAGE = "`/brincr snooze <customer> <duration>`, e.g. `/brincr snooze 12345678 4h`"


def register(app: AsyncApp, deps: Deps) -> None:
    fleet, permissions = deps.fleet, deps.permissions

    async def forget(inv: Invocation) -> None:
        await permissions.require_admin(inv.user_id, "remove customers")
        if not inv.rest:
            raise UserError(
                "Which customer?", usage="`/brincr forget <customer>`: " + CUSTOMER_USAGE
            )
        customer = await fleet.resolve(inv.rest)
        await inv.reply(render_forget_confirm(customer))

    async def snooze(inv: Invocation) -> None:
        await permissions.require_admin(inv.user_id, "snooze alerts")
        if len(inv.args) < 2:
            raise UserError("Which customer, and for how long?", usage=SNOOZE_USAGE)
        query, duration = inv.rest.rsplit(maxsplit=1)
        until = await fleet.snooze(query, parse_duration(duration), inv.user_id)
        customer = await fleet.resolve(query)
        await inv.reply(
            render_notice(
                f":zzz: Alerts for *{escape(customer.name)}* are snoozed until {date(until)}."
            )
        )

    async def unsnooze(inv: Invocation) -> None:
        await permissions.require_admin(inv.user_id, "unsnooze alerts")
        if not inv.rest:
            raise UserError("Which customer?", usage="`/brincr unsnooze <customer>`")
        customer = await fleet.unsnooze(inv.rest, inv.user_id)
        await inv.reply(render_notice(f":bell: Alerts for *{escape(customer.name)}* are on again."))

    deps.commands.add("forget", forget)
    deps.commands.add("snooze", snooze)
    deps.commands.add("unsnooze", unsnooze)

    @app.action(Action.FORGET_CONFIRM.value)
    @answers_user_errors
    async def confirm(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        await permissions.require_admin(user, "remove customers")
        customer = await fleet.forget(body["actions"][0]["value"], user)
        text = (
            f":wastebasket: Removed *{escape(customer.name)}* (KvK {customer.kvk})."
            if customer
            else "That customer was already removed."
        )
        await respond(**render_notice(text).kwargs(), replace_original=True)

    @app.action(Action.FORGET_CANCEL.value)
    async def cancel(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        await respond(
            **render_notice("Kept it: nothing was removed.").kwargs(), replace_original=True
        )
