"""The Bolt app factory: ``create_app(services, client=...)`` builds an AsyncApp, registers
every handler module, and installs one global error handler. Tests build one per test."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

import handlers
from bot.fleet import Fleet
from bot.permissions import Permissions
from bot.render import render_notice
from bot.respond import RetryingRespond
from bot.services import Services
from handlers.deps import Deps
from handlers.router import CommandRouter

log = logging.getLogger(__name__)


def create_app(services: Services, client: AsyncWebClient) -> AsyncApp:
    """The Slack app. In Socket Mode requests are not signed; in HTTP mode every request must
    carry a valid signature less than five minutes old (Bolt answers 401 otherwise)."""
    settings = services.settings
    signing_secret = settings.slack_signing_secret
    app = AsyncApp(
        client=client,
        signing_secret=signing_secret.get_secret_value() if signing_secret else "",
        request_verification_enabled=not settings.socket_mode,
        logger=logging.getLogger("slack_bolt"),
    )
    commands = CommandRouter()
    deps = Deps(
        services=services,
        fleet=Fleet(services),
        permissions=Permissions(settings, client),
        commands=commands,
    )
    handlers.register_handlers(app, deps)

    @app.command("/brincr")
    async def brincr(ack: Any, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await commands.dispatch(command, respond, client)

    app.middleware(_retrying_replies)
    app.error(_on_error)
    services.extras["deps"] = deps
    return app


async def _retrying_replies(
    context: AsyncBoltContext, next_: Callable[[], Awaitable[None]]
) -> None:
    """Every listener's ``respond`` retries Slack's 429/5xx answers (bot.respond)."""
    respond = context.respond
    if respond is not None and respond.response_url:
        context["respond"] = RetryingRespond.replacing(respond)
    await next_()


async def _on_error(error: Exception, body: dict[str, Any], respond: AsyncRespond | None) -> None:
    """The last word on an unexpected error: a log line with an incident id, and a polite
    reply that quotes it (never the exception text, which may carry upstream details)."""
    incident = uuid.uuid4().hex[:8]
    kind = body.get("command") or body.get("type") or "request"
    log.error("unhandled error %s in %s: %s", incident, kind, type(error).__name__, exc_info=error)
    if respond is not None and respond.response_url:
        text = f":x: Something went wrong on our side (error id `{incident}`). Please try again."
        await respond(**render_notice(text).kwargs(), response_type="ephemeral")
