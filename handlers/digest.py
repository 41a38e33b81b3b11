"""``/brincr digest`` (admins, through the router's gate): post the weekly digest into
``DIGEST_CHANNEL`` now. The service is :mod:`bot.fleet.digest`."""

from __future__ import annotations

from bot.core.clock import utcnow
from bot.fleet.digest import post_digest
from bot.slack.blocks import render_notice
from handlers.router import CommandRouter, Invocation
from handlers.wiring import Listeners


async def digest(inv: Invocation) -> None:
    await post_digest(inv.bot.services, utcnow())
    channel = inv.bot.settings.digest_channel
    await inv.reply(render_notice(f":newspaper: The digest is on its way to <#{channel}>."))


def register(_on: Listeners, commands: CommandRouter) -> None:
    commands.add("digest", digest, admin="post the digest")
