"""``/brincr list``, its page buttons, and ``/brincr help``."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.actions import Action
from bot.clock import utcnow
from bot.errors import UserError
from bot.render import LIST_PAGE_SIZE, render_help, render_list
from handlers.deps import Deps
from handlers.router import Invocation, answers_user_errors


def register(app: AsyncApp, deps: Deps) -> None:
    fleet = deps.fleet

    async def list_(inv: Invocation) -> None:
        which = inv.args[0].lower() if inv.args else "all"
        page = await fleet.page(which, 0, LIST_PAGE_SIZE)
        await inv.reply(render_list(page, which, utcnow()))

    async def help_(inv: Invocation) -> None:
        await inv.reply(render_help())

    deps.commands.add("list", list_)
    deps.commands.add("help", help_)

    @app.action(Action.LIST_PAGE.value)
    @answers_user_errors
    async def next_page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        which, offset = _page_ref(body["actions"][0].get("value", ""))
        page = await fleet.page(which, offset, LIST_PAGE_SIZE)
        await respond(
            **render_list(page, which, utcnow()).kwargs(),
            response_type="ephemeral",
            replace_original=True,
        )


def _page_ref(value: str) -> tuple[str, int]:
    """The list filter and offset a page button carries (UserError if it is not one)."""
    try:
        wanted = json.loads(value)
        return str(wanted["f"]), max(0, int(wanted["o"]))
    except (ValueError, KeyError, TypeError):
        raise UserError("That page button is out of date: run `/brincr list` again.") from None
