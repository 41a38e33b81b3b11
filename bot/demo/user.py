"""The person at the terminal, as Slack presents them to the bot: each typed command becomes a
signed slash-command request, each ``click <n>`` a signed ``block_actions`` payload, sent over
HTTP to the running bot's ``POST /slack/events``: the same path ``serve`` takes.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.demo.printer import Clickable
from bot.demo.slack import TEAM_ID, DemoSlack

COMMAND = "/brincr"
TIMEOUT_SECONDS = 10.0


class RequestRefused(Exception):
    """The bot answered a request with an HTTP error (e.g. 401: a bad signature)."""


class SlackUser:
    """Sends what a user does in Slack to the bot at ``bot_url``, signed with ``secret``."""

    def __init__(
        self, bot_url: str, secret: str, slack: DemoSlack, *, user_id: str, channel_id: str
    ) -> None:
        self.events_url = bot_url.rstrip("/") + "/slack/events"
        self.verifier = SignatureVerifier(secret)
        self.slack = slack
        self.user_id = user_id
        self.channel_id = channel_id
        self.http = httpx.AsyncClient(timeout=TIMEOUT_SECONDS)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def command(self, text: str) -> str:
        """``/brincr <text>``; returns the key of its response_url."""
        key = uuid.uuid4().hex[:12]
        form = {
            "token": "demo", "team_id": TEAM_ID, "team_domain": "demo",
            "channel_id": self.channel_id, "channel_name": "support", "user_id": self.user_id,
            "user_name": "you", "command": COMMAND, "text": text, "api_app_id": "A0DEMO",
            "response_url": self.slack.response_url(key), "trigger_id": _trigger_id(),
        }  # fmt: skip
        await self._post(urlencode(form))
        return key

    async def click(self, button: Clickable) -> str:
        """Press ``button``; returns the key of the click's response_url."""
        key = uuid.uuid4().hex[:12]
        message = button.delivery
        channel = message.channel or self.channel_id
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "demo"},
            "user": {"id": self.user_id, "username": "you", "team_id": TEAM_ID},
            "api_app_id": "A0DEMO", "token": "demo", "trigger_id": _trigger_id(),
            "container": {"type": "message", "message_ts": message.ts, "channel_id": channel,
                          "is_ephemeral": message.ephemeral},
            "channel": {"id": channel, "name": "support"},
            "message": {"ts": message.ts, "text": message.payload.get("text", "")},
            "response_url": self.slack.response_url(key),
            "actions": [_action(button)],
        }  # fmt: skip
        await self._post(urlencode({"payload": json.dumps(payload)}))
        return key

    async def _post(self, body: str) -> None:
        timestamp = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body)
        assert signature is not None
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        }
        response = await self.http.post(self.events_url, content=body, headers=headers)
        if response.status_code >= 400:
            raise RequestRefused(f"the bot answered HTTP {response.status_code}")


def _action(button: Clickable) -> dict[str, Any]:
    """The ``actions`` entry Slack sends for a button press or a menu choice."""
    text = {"type": "plain_text", "text": button.label}
    if button.menu:
        return {"action_id": button.action_id, "block_id": "demo", "type": "static_select",
                "selected_option": {"text": text, "value": button.value},
                "action_ts": str(time.time())}  # fmt: skip
    return {"action_id": button.action_id, "block_id": "demo", "type": "button",
            "value": button.value, "text": text, "action_ts": str(time.time())}  # fmt: skip


def _trigger_id() -> str:
    return f"{uuid.uuid4().int % 10**12}.1.demo"
