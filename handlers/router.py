"""The ``/brincr`` slash command: ack at once, split the text, hand it to one subcommand.

Feature modules add their subcommands with :meth:`CommandRouter.add`; empty or unknown input
gets the help. A :class:`~bot.errors.UserError` raised by a subcommand becomes an ephemeral
reply saying what was wrong and the right form; anything else reaches the app's global error
handler (``bot.app``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import UserError
from bot.render import Message, render_candidates, render_error, render_help
from bot.slack_text import escape
from storage.customers import AmbiguousCustomer

log = logging.getLogger(__name__)
MAX_TEXT = 1000  # longer /brincr text is refused before it is parsed
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class Invocation:
    """One ``/brincr`` command as a subcommand sees it."""

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


async def reply_user_error(respond: AsyncRespond, error: UserError, **extra: Any) -> None:
    message = (
        render_candidates(error.query, error.candidates)
        if isinstance(error, AmbiguousCustomer)
        else render_error(error)
    )
    await respond(**message.kwargs(), response_type="ephemeral", **extra)


def answers_user_errors(listener: F) -> F:
    """Decorator for listeners that get ``respond``: a UserError becomes an ephemeral reply."""

    @functools.wraps(listener)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await listener(*args, **kwargs)
        except UserError as error:
            log.info("refused: %s", error)
            await reply_user_error(kwargs["respond"], error)
            return None

    return wrapper  # type: ignore[return-value]


class CommandRouter:
    def __init__(self) -> None:
        self.subcommands: dict[str, Subcommand] = {}

    def add(self, name: str, subcommand: Subcommand) -> None:
        self.subcommands[name] = subcommand

    async def dispatch(
        self, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        text: str = command.get("text") or ""
        if len(text) > MAX_TEXT:
            too_long = UserError(
                f"That is {len(text):,} characters: too long for a command.",
                usage="see `/brincr help`",
            )
            await reply_user_error(respond, too_long)
            return
        name, _, rest = text.strip().partition(" ")
        subcommand = self.subcommands.get(name.lower())
        log.info("/brincr %s from %s", name.lower()[:20] or "help", command.get("user_id"))
        if subcommand is None:
            note = None if not name else f"I don't know `{escape(name[:30])}`. Here is what I do:"
            await respond(**render_help(note).kwargs(), response_type="ephemeral")
            return
        invocation = Invocation(
            user_id=command["user_id"],
            channel_id=command.get("channel_id", ""),
            name=name.lower(),
            args=rest.split(),
            rest=rest.strip(),
            trigger_id=command.get("trigger_id"),
            respond=respond,
            client=client,
        )
        try:
            await subcommand(invocation)
        except UserError as error:
            log.info("/brincr %s refused: %s", invocation.name, error)
            await reply_user_error(respond, error)
