"""``/brincr status``, ``/brincr check`` and the status message's buttons."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.actions import Action
from bot.clock import utcnow
from bot.errors import UserError
from bot.render import Message, context, render_notice, render_status
from bot.slack_text import escape
from handlers.deps import Deps
from handlers.router import Invocation, answers_user_errors
from storage.customers import CUSTOMER_USAGE

STATUS_USAGE = "`/brincr status <customer>`: " + CUSTOMER_USAGE
CHECK_USAGE = "`/brincr check <customer>`: " + CUSTOMER_USAGE


def register(app: AsyncApp, deps: Deps) -> None:
    fleet = deps.fleet
    required = deps.services.settings.brincr_scopes

    async def status_message(query: str, *, check_by: str | None = None) -> Message:
        data = await (fleet.check(query, check_by) if check_by else fleet.status(query))
        return render_status(data, required, utcnow())

    async def status(inv: Invocation) -> None:
        if not inv.rest:
            raise UserError("Which customer?", usage=STATUS_USAGE)
        await inv.reply(await status_message(inv.rest))

    async def check(inv: Invocation) -> None:
        if not inv.rest:
            raise UserError("Which customer?", usage=CHECK_USAGE)
        customer = await fleet.resolve(inv.rest)
        await inv.reply(
            render_notice(f":hourglass_flowing_sand: Checking *{escape(customer.name)}*…")
        )
        await inv.reply(
            await status_message(customer.kvk, check_by=inv.user_id), replace_original=True
        )

    deps.commands.add("status", status)
    deps.commands.add("check", check)

    @app.action(Action.CHECK_NOW.value)
    @answers_user_errors
    async def check_now(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        kvk = body["actions"][0]["value"]
        message = await status_message(kvk, check_by=body["user"]["id"])
        # An ephemeral status is refreshed in place; from a channel message (an alert),
        # the clicker gets the fresh status for their eyes only.
        in_place = bool(body.get("container", {}).get("is_ephemeral"))
        await respond(**message.kwargs(), response_type="ephemeral", replace_original=in_place)

    @app.action(Action.SHARE.value)
    @answers_user_errors
    async def share(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        message = await status_message(body["actions"][0]["value"])
        user = body["user"]["id"]
        shared = Message(
            text=f"{message.text} (shared by <@{user}>)",
            blocks=[*message.blocks[:-1], context(f"Shared by <@{user}>")],  # no buttons
        )
        await respond(**shared.kwargs(), response_type="in_channel", replace_original=False)
