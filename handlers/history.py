"""``/brincr history <customer>`` and the buttons that lead there: History on `status` and on
alerts, Older / Newer on the timeline itself. Open to everyone, like `status`. The service is
:meth:`bot.fleet.service.Fleet.history`, the renderer :mod:`bot.fleet.render_history`."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond

from bot.composition import Bot
from bot.core.errors import UserError
from bot.fleet.render_history import render_history
from bot.slack.ids import Action
from handlers.payloads import Press
from handlers.router import CommandRouter, Invocation
from handlers.wiring import Listeners
from storage.customers import CUSTOMER_USAGE

HISTORY_USAGE = "`/brincr history <customer>`: " + CUSTOMER_USAGE


def _page_ref(value: str) -> tuple[str, int]:
    try:
        ref = json.loads(value)
        return str(ref["k"]), int(ref["o"])
    except (ValueError, KeyError, TypeError):
        raise UserError("That button no longer points at a page of history.") from None


async def history(inv: Invocation) -> None:
    if not inv.rest:
        raise UserError("Which customer?", usage=HISTORY_USAGE)
    page = await inv.bot.fleet.history(inv.rest)
    await inv.reply(render_history(page, inv.bot.settings.tz))


async def open_history(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot
) -> None:
    await ack()
    page = await bot.fleet.history(Press.of(body).value)
    message = render_history(page, bot.settings.tz)
    await respond(**message.kwargs(), response_type="ephemeral", replace_original=False)


async def turn_page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot) -> None:
    await ack()
    kvk, offset = _page_ref(Press.of(body).value)
    message = render_history(await bot.fleet.history(kvk, offset), bot.settings.tz)
    await respond(**message.kwargs(), response_type="ephemeral", replace_original=True)


def register(on: Listeners, commands: CommandRouter) -> None:
    commands.add("history", history)
    on.action(Action.HISTORY, open_history)
    on.action(Action.HISTORY_PAGE, turn_page)
