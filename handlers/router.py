"""The ``/brincr`` slash command: ack at once, split the text, hand it to one subcommand.

Feature modules add their subcommands with :meth:`CommandRouter.add`, naming what a changing
one does so the admin gate can refuse it in the same words as a button. Empty or unknown input
gets the help. A :class:`~bot.core.errors.UserError` raised by a subcommand (or by the gate)
goes to the app's one error handler (:mod:`handlers.errors`), which answers the person.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.composition import Bot
from bot.core.errors import UserError
from bot.slack.blocks import Message
from bot.slack.help import render_help, render_suggestion, usage_lines
from bot.slack.text import code
from handlers.gate import Gate
from handlers.wiring import Listeners

log = logging.getLogger(__name__)
MAX_TEXT = 1000  # longer /brincr text is refused before it is parsed


@dataclass(frozen=True)
class Invocation:
    """One ``/brincr`` command as a subcommand sees it."""

    bot: Bot
    gate: Gate  # for a subcommand that is open to all in one form and for admins in another
    user_id: str
    channel_id: str
    name: str
    args: list[str]
    rest: str  # the text after the subcommand name, as typed
    trigger_id: str | None
    respond: AsyncRespond
    client: AsyncWebClient

    async def reply(self, message: Message, **extra: Any) -> None:
        """An ephemeral reply to the person who typed the command."""
        await self.respond(**message.kwargs(), response_type="ephemeral", **extra)


Subcommand = Callable[[Invocation], Awaitable[None]]


@dataclass(frozen=True)
class Route:
    run: Subcommand
    admin: str | None  # what it changes, for the gate's refusal; None: open to everyone


class CommandRouter:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}

    def add(self, name: str, subcommand: Subcommand, *, admin: str | None = None) -> None:
        """``admin``: the subcommand changes something ("invite customers"): admins only."""
        self.routes[name] = Route(subcommand, admin)

    async def dispatch(self, invocation: Invocation, gate: Gate) -> None:
        route = self.routes.get(invocation.name)
        if route is None:
            name = invocation.name
            near = difflib.get_close_matches(name.lower(), self.routes, n=1, cutoff=0.6)
            if name and near and usage_lines(near[0]):
                await invocation.reply(render_suggestion(name[:30], near[0]))
                return
            note = f"I don't know {code(name[:30])}. Here is what I do:" if name else None
            await invocation.reply(render_help(note))
            return
        if route.admin is not None:
            await gate.require_admin(invocation.user_id, route.admin)
        await route.run(invocation)


async def brincr(
    ack: AsyncAck,
    command: dict[str, Any],
    respond: AsyncRespond,
    client: AsyncWebClient,
    bot: Bot,
    commands: CommandRouter,
    gate: Gate,
) -> None:
    await ack()
    text = str(command.get("text") or "")
    if len(text) > MAX_TEXT:
        raise UserError(
            f"That is {len(text):,} characters: too long for a command.",
            usage="see `/brincr help`",
        )
    name, _, rest = text.strip().partition(" ")
    log.info("/brincr %s from %s", name.lower()[:20] or "help", command.get("user_id"))
    invocation = Invocation(
        bot=bot,
        gate=gate,
        user_id=str(command.get("user_id") or ""),
        channel_id=str(command.get("channel_id") or ""),
        name=name.lower(),
        args=rest.split(),
        rest=rest.strip(),
        trigger_id=command.get("trigger_id"),
        respond=respond,
        client=client,
    )
    await commands.dispatch(invocation, gate)


def register(on: Listeners, _commands: CommandRouter) -> None:
    on.command("/brincr", brincr)
