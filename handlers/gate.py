"""The admin gate: who may change things. ``BOT_ADMINS`` lists Slack user IDs (``U…``/``W…``)
and user-group IDs (``S…``). Reading is open to the workspace; every changing command and
every changing button goes through :class:`Gate` — subcommands through the router, buttons and
modals through the listener middleware :func:`admin_only` — so a refusal is the same
everywhere and says why.

Group membership is read with ``usergroups.users.list`` and cached for a few minutes, so a
burst of button clicks costs one Web API call, and a Slack outage falls back to the last
answer it had (or refuses, saying why).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clients.slack import error_code
from bot.core.errors import PermissionDenied
from bot.settings import Settings
from bot.slack.blocks import render_error
from handlers.payloads import Press

log = logging.getLogger(__name__)
GROUP_CACHE_SECONDS = 300.0

NO_ADMINS = (
    "No bot admins are configured, so changing commands are switched off. Ask whoever runs "
    "the bot to set `BOT_ADMINS` to Slack user IDs (U…) or user-group IDs (S…)."
)


class Gate:
    def __init__(self, settings: Settings, client: AsyncWebClient) -> None:
        self.users = {a for a in settings.bot_admins if not a.startswith("S")}
        self.groups = [a for a in settings.bot_admins if a.startswith("S")]
        self.client = client
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def is_admin(self, user_id: str) -> bool:
        if user_id in self.users:
            return True
        for group in self.groups:
            if user_id in await self._group_members(group):
                return True
        return False

    async def require_admin(self, user_id: str, what: str) -> None:
        """Raise PermissionDenied (a UserError: shown as is) unless ``user_id`` is an admin."""
        if not self.users and not self.groups:
            raise PermissionDenied(f"Only bot admins may {what}.", usage=NO_ADMINS)
        if not await self.is_admin(user_id):
            who = ", ".join([f"<@{u}>" for u in sorted(self.users)] +
                            [f"<!subteam^{g}>" for g in self.groups])  # fmt: skip
            raise PermissionDenied(
                f"Only bot admins may {what}.",
                usage=f"Ask one of them ({who}) to do it, or to add you to `BOT_ADMINS`.",
            )

    async def _group_members(self, group: str) -> frozenset[str]:
        cached = self._members.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        try:
            answer = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as error:
            log.warning("could not read members of user group %s: %s", group, error_code(error))
            return cached[1] if cached else frozenset()
        members = frozenset(answer.get("users") or [])
        self._members[group] = (time.monotonic(), members)
        return members


Next = Callable[[], Awaitable[None]]
Middleware = Callable[..., Awaitable[BoltResponse | None]]


def admin_only(what: str) -> Middleware:
    """Listener middleware for a button that changes something: non-admins get an ephemeral
    refusal that says why, and the listener does not run."""

    async def only_admins(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, gate: Gate, next: Next
    ) -> BoltResponse | None:
        try:
            await gate.require_admin(Press.of(body).user_id, what)
        except PermissionDenied as refused:
            answer = await ack()
            log.info("refused %s to %s: not an admin", what, Press.of(body).user_id)
            await respond(
                **render_error(refused).kwargs(), response_type="ephemeral", replace_original=False
            )
            return answer
        await next()
        return None

    return only_admins
