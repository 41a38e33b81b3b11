"""A local stand-in for Slack's Socket Mode WebSocket endpoint.

Wire it to :class:`bot.demo.fake_slack.FakeSlack` with ``fake.socket_url = server.url``: the
client's ``apps.connections.open`` then answers this server's URL. On every connection the server
first sends Slack's ``hello`` message; envelopes go to the newest open connection and the client's
acks (``{"envelope_id": ..., "payload"?: ...}``) are collected for :meth:`wait_ack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMsgType, web

APP_ID = "A0FAKE"


class FakeSocketModeServer:
    """A local WebSocket server (aiohttp.web) that plays Slack's Socket Mode side."""

    def __init__(self) -> None:
        self.url: str = ""
        self.connections: int = 0  # connections accepted so far
        self.received: list[dict[str, Any]] = []  # every JSON message the clients sent
        self.acks: dict[str, dict[str, Any]] = {}  # envelope_id -> the client's ack
        self._open: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"ws://{host}:{port}/link"

    async def stop(self) -> None:
        await self.drop_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    @property
    def open_connections(self) -> int:
        return len(self._open)

    async def wait_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until at least one connection is open."""
        await self._wait(lambda: bool(self._open), timeout, "a Socket Mode connection")

    async def wait_connections(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` connections were accepted in total (and one is open)."""
        await self._wait(
            lambda: self.connections >= count and bool(self._open),
            timeout,
            f"{count} Socket Mode connection(s) (accepted so far: {self.connections})",
        )

    async def send_envelope(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = True,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
    ) -> str:
        """Send an envelope (``events_api``, ``slash_commands``, ``interactive``) to the newest
        open connection, waiting for one if needed; returns its envelope_id."""
        await self.wait_connected()
        envelope_id = str(uuid.uuid4())
        message: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        if type_ == "events_api":
            message["retry_attempt"] = retry_attempt or 0
            message["retry_reason"] = retry_reason or ""
        await self._open[-1].send_str(json.dumps(message))
        return envelope_id

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Send Slack's ``disconnect`` message (the client then opens a new connection)."""
        await self.wait_connected()
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        await self._open[-1].send_str(json.dumps(message))

    async def wait_ack(
        self,
        envelope_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - polling helper; the deadline is the point
    ) -> dict[str, Any]:
        """The client's ack for ``envelope_id``; AssertionError when none came in time."""
        await self._wait(
            lambda: envelope_id in self.acks, timeout, f"the ack of envelope {envelope_id}"
        )
        return self.acks[envelope_id]

    async def drop_connections(self) -> None:
        """Close every open socket (going-away code 1001), as Slack does when it recycles them."""
        sockets, self._open = self._open, []
        self._notify()
        for ws in sockets:
            await ws.close(code=1001, message=b"fake server dropped the connection")

    # ------------------------------------------------------------------ internals

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {seconds}s waiting for {what}; "
                    f"connections={self.connections}, open={len(self._open)}, "
                    f"acks={list(self.acks)}, received={self.received[-5:]}"
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        self._open.append(ws)
        hello = {
            "type": "hello",
            "num_connections": len(self._open),
            "debug_info": {
                "host": "applink-fake",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }
        await ws.send_str(json.dumps(hello))
        self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if not isinstance(data, dict):
                    continue
                self.received.append(data)
                if "envelope_id" in data:
                    self.acks[str(data["envelope_id"])] = data
                self._notify()
        finally:
            if ws in self._open:
                self._open.remove(ws)
            self._notify()
        return ws


__all__ = ["FakeSocketModeServer"]
