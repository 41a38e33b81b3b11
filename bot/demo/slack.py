"""The demo's own Slack Web API: a small aiohttp server on 127.0.0.1 that answers the methods
the bot calls with plausible ``ok`` answers, and hands every message it receives (a post, an
update of an earlier message, a thread reply, a ``response_url`` reply) to a callback, which
prints it. The bot reaches it through ``SLACK_API_URL``, exactly as it reaches Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

BOT_USER_ID = "U0BRINCR"
TEAM_ID = "T0DEMO"
POLL_SECONDS = 0.05
_JSON_PARAMS = ("blocks", "attachments", "view", "metadata")

Where = Literal["post", "update", "reply", "response", "ephemeral", "modal"]


@dataclass
class Delivery:
    """One message the bot sent, as the terminal shows it."""

    where: Where
    channel: str  # channel ID ("" for a response_url reply)
    ts: str  # the message's ts (a made-up one for ephemeral replies)
    payload: dict[str, Any]  # text, blocks, response_type, replace_original, ...
    key: str | None = None  # the response_url key it answered
    thread_ts: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ephemeral(self) -> bool:
        return self.where == "ephemeral" or (
            self.where == "response" and self.payload.get("response_type") != "in_channel"
        )


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


class DemoSlack:
    """Answers the Web API on ``api_url`` and ``response_url(key)`` replies; ``on_delivery``
    sees every message. ``deliveries`` keeps them all, oldest first."""

    def __init__(self, on_delivery: Callable[[Delivery], None]) -> None:
        self.on_delivery = on_delivery
        self.deliveries: list[Delivery] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._seq = 0

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(
        self,
        predicate: Callable[[Delivery], bool],
        timeout: float,  # noqa: ASYNC109 - a deadline for the whole wait
        *,
        count: int = 1,
    ) -> list[Delivery]:
        """Wait until ``count`` deliveries match (earlier ones count); TimeoutError if not."""
        async with asyncio.timeout(timeout):
            while True:
                found = [d for d in self.deliveries if predicate(d)]
                if len(found) >= count:
                    return found
                await asyncio.sleep(POLL_SECONDS)

    # --- HTTP -------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        params = await _params(request)
        method = request.match_info["method"]
        handler = self._methods().get(method)
        answer = handler(params) if handler is not None else _ok()
        return web.json_response(answer)

    async def _response(self, request: web.Request) -> web.Response:
        raw = await request.read()
        with contextlib.suppress(ValueError):
            payload = json.loads(raw or b"{}")
            if isinstance(payload, dict):
                key = request.match_info["key"]
                self._deliver(Delivery("response", "", self._next_ts(), payload, key=key))
        return web.json_response(_ok())

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "chat.postEphemeral": self._ephemeral,
            "views.open": self._modal,
            "views.publish": self._view,
            "views.update": self._view,
            "conversations.open": self._conversations_open,
            "usergroups.users.list": lambda _params: _ok(users=[]),
        }

    # --- methods ----------------------------------------------------------------------------

    def _auth_test(self, _params: dict[str, Any]) -> dict[str, Any]:
        return _ok(
            url="https://demo.slack.com/", team="Demo", user="brincr-bot", team_id=TEAM_ID,
            user_id=BOT_USER_ID, bot_id="B0DEMO", is_enterprise_install=False,
        )  # fmt: skip

    def _post(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _dm(str(params.get("channel", "")))
        ts, thread = self._next_ts(), params.get("thread_ts") or None
        where: Where = "reply" if thread else "post"
        self._deliver(Delivery(where, channel, ts, _message(params), thread_ts=thread))
        return _ok(channel=channel, ts=ts, message={"text": params.get("text", ""), "ts": ts})

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _dm(str(params.get("channel", ""))), str(params.get("ts", ""))
        self._deliver(Delivery("update", channel, ts, _message(params)))
        return _ok(channel=channel, ts=ts, text=params.get("text", ""))

    def _ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), self._next_ts()
        self._deliver(Delivery("ephemeral", channel, ts, _message(params)))
        return _ok(message_ts=ts)

    def _modal(self, params: dict[str, Any]) -> dict[str, Any]:
        self._deliver(Delivery("modal", "", self._next_ts(), _view_of(params)))
        return self._view(params)

    def _view(self, params: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        return _ok(view={**_view_of(params), "id": f"V0{self._seq:08d}", "team_id": TEAM_ID})

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = str(params.get("users", "")).split(",")
        return _ok(channel={"id": params.get("channel") or _dm(users[0]), "is_im": True})

    # --- plumbing ---------------------------------------------------------------------------

    def _next_ts(self) -> str:
        self._seq += 1
        return f"{int(time.time())}.{self._seq:06d}"

    def _deliver(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)
        self.on_delivery(delivery)


def _dm(channel: str) -> str:
    """Posting to a user ID lands in the DM with that user, as on Slack."""
    return "D" + channel if channel[:1] in ("U", "W") else channel


def _view_of(params: dict[str, Any]) -> dict[str, Any]:
    view = params.get("view")
    return view if isinstance(view, dict) else {}


def _message(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in ("text", "blocks", "attachments") if k in params}


async def _params(request: web.Request) -> dict[str, Any]:
    """Form or JSON body; the JSON strings slack_sdk puts in form fields decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        params.update(body if isinstance(body, dict) else {})
    else:
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for name in _JSON_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[name] = json.loads(value)
    return params
