"""``/brincr history <customer>`` and the buttons that lead there: History on `status` and on
alerts, Older / Newer on the timeline itself. Open to everyone, like `status`."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.actions import Action
from bot.errors import UserError
from bot.render_history import render_history
from bot.timeline import history_page
from handlers.deps import Deps
from handlers.router import Invocation, answers_user_errors
from storage.customers import CUSTOMER_USAGE

HISTORY_USAGE = "`/brincr history <customer>`: " + CUSTOMER_USAGE


def _page_ref(value: str) -> tuple[str, int]:
    try:
        ref = json.loads(value)
        return str(ref["k"]), int(ref["o"])
    except (ValueError, KeyError, TypeError):
        raise UserError("That button no longer points at a page of history.") from None


def register(app: AsyncApp, deps: Deps) -> None:
    db = deps.services.db
    tz = deps.services.settings.tz

    async def history(inv: Invocation) -> None:
        if not inv.rest:
            raise UserError("Which customer?", usage=HISTORY_USAGE)
        await inv.reply(render_history(await history_page(db, inv.rest), tz))

    deps.commands.add("history", history)

    @app.action(Action.HISTORY.value)
    @answers_user_errors
    async def open_history(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        page = await history_page(db, body["actions"][0]["value"])
        await respond(**render_history(page, tz).kwargs(), response_type="ephemeral",
                      replace_original=False)  # fmt: skip

    @app.action(Action.HISTORY_PAGE.value)
    @answers_user_errors
    async def turn_page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        kvk, offset = _page_ref(body["actions"][0]["value"])
        page = await history_page(db, kvk, offset)
        await respond(**render_history(page, tz).kwargs(), response_type="ephemeral",
                      replace_original=True)  # fmt: skip
