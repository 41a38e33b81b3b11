"""The demo's Slack: the project's fake Slack Web API (:class:`~bot.demo.fake_slack.FakeSlack`,
the same one the tests use) with an observer that turns every message the bot sends (a post,
an update of an earlier message, a thread reply, an ephemeral or ``response_url`` reply, a
modal) into a :class:`Delivery`, hands it to a callback that prints it, and keeps it. The bot
reaches it through ``SLACK_API_URL``, exactly as it reaches Slack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.demo.fake_slack import TEAM_ID, FakeSlack, SlackCall

__all__ = ["TEAM_ID", "Delivery", "DemoSlack"]

POLL_SECONDS = 0.05
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


class DemoSlack(FakeSlack):
    """The fake Slack; ``on_delivery`` sees every message, ``deliveries`` keeps them all."""

    def __init__(self, on_delivery: Callable[[Delivery], None]) -> None:
        super().__init__()
        self.on_delivery = on_delivery
        self.deliveries: list[Delivery] = []
        self.observers.append(self._observed)

    def response_url(self, key: str) -> str:
        return self.response_url_base + key

    async def wait_for_deliveries(
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

    def _observed(self, call: SlackCall) -> None:
        delivery = delivery_of(call)
        if delivery is not None:
            self.deliveries.append(delivery)
            self.on_delivery(delivery)


def delivery_of(call: SlackCall) -> Delivery | None:
    """The message an answered call carried, or None (a lookup, a refused call)."""
    answer = call.response if isinstance(call.response, dict) else {}
    if call.failed or not answer.get("ok"):
        return None
    params = call.params
    if call.method == "response_url":
        payload = {k: v for k, v in params.items() if k != "_key"}
        return Delivery("response", "", f"{time.time():.6f}", payload, key=params.get("_key"))
    message: dict[str, Any] = {
        k: params[k] for k in ("text", "blocks", "attachments") if k in params
    }
    if call.method == "chat.postMessage":
        thread = params.get("thread_ts") or None
        where: Where = "reply" if thread else "post"
        return Delivery(where, answer["channel"], answer["ts"], message, thread_ts=thread)
    if call.method == "chat.update":
        return Delivery("update", answer["channel"], answer["ts"], message)
    if call.method == "chat.postEphemeral":
        return Delivery("ephemeral", str(params.get("channel", "")), answer["message_ts"], message)
    if call.method == "views.open":
        view = params.get("view")
        return Delivery("modal", "", f"{time.time():.6f}", view if isinstance(view, dict) else {})
    return None
