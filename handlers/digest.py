"""``/brincr digest`` (admins): post the weekly digest into ``DIGEST_CHANNEL`` now."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.clock import utcnow
from bot.digest import post_digest
from bot.render import render_notice
from handlers.deps import Deps
from handlers.router import Invocation


def register(_app: AsyncApp, deps: Deps) -> None:
    services = deps.services

    async def digest(inv: Invocation) -> None:
        await deps.permissions.require_admin(inv.user_id, "post the digest")
        await post_digest(services, utcnow())
        channel = services.settings.digest_channel
        await inv.reply(render_notice(f":newspaper: The digest is on its way to <#{channel}>."))

    deps.commands.add("digest", digest)
