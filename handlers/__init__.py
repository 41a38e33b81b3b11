"""Slack listeners, one module per feature, each with ``register(on, commands)`` that only
wires module-level listeners through :class:`handlers.wiring.Listeners` (which guards each).
:func:`create_app` builds the Bolt app for a bot.

What every listener may ask for by name, besides Bolt's own arguments (``ack``, ``body``,
``respond``, ``client`` …): ``bot`` (:class:`bot.composition.Bot`), ``gate``
(:class:`handlers.gate.Gate`) and ``commands`` (the ``/brincr`` router). A global middleware
puts them in the request context, where Bolt's argument injection finds them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.clients.respond import RetryingRespond
from bot.composition import Bot
from handlers import (
    alerts,
    digest,
    fleet,
    history,
    invite,
    link,
    maintenance,
    rollout,
    router,
)
from handlers.errors import on_error
from handlers.gate import Gate
from handlers.router import CommandRouter
from handlers.wiring import Listeners

MODULES = (router, fleet, alerts, invite, link, maintenance, history, digest, rollout)
Next = Callable[[], Awaitable[None]]


def create_app(bot: Bot) -> AsyncApp:
    """The Slack app. In Socket Mode requests are not signed; in HTTP mode every request must
    carry a valid signature less than five minutes old (Bolt answers 401 otherwise)."""
    settings = bot.settings
    secret = settings.slack_signing_secret
    app = AsyncApp(
        name="brincr-bot",  # without one Bolt walks the whole call stack for a file name
        client=bot.slack,
        signing_secret=secret.get_secret_value() if secret else "",
        request_verification_enabled=not settings.socket_mode,
        logger=logging.getLogger("slack_bolt"),
    )
    commands = CommandRouter()
    gate = Gate(settings, bot.slack)

    async def provide(context: AsyncBoltContext, next: Next) -> None:
        """Every listener's ``bot``, ``gate`` and ``commands``, and a ``respond`` that retries
        Slack's 429/5xx answers (:mod:`bot.clients.respond`). (Sweeps need no word from
        here: ``serve`` runs them in its check engine process, :class:`bot.runtime.CheckEngine`.)"""
        context["bot"], context["gate"], context["commands"] = bot, gate, commands
        respond = context.respond
        if respond is not None and respond.response_url:
            context["respond"] = RetryingRespond.replacing(respond)
        await next()

    app.middleware(provide)
    app.error(on_error)
    listeners = Listeners(app)
    for module in MODULES:
        module.register(listeners, commands)
    return app
