"""One running bot, shared by ``serve``, the demo and the tests: the bot built by the
composition root (:func:`bot.composition.build_bot`), its Slack app, the long-running parts
(outbox sender, webhook worker, scheduler) and the HTTP listener.

Only the settings differ between them: ``serve`` talks to Slack and Visma, the demo and the
tests point ``SLACK_API_URL`` at a local fake Web API and the Visma/Brincr URLs at the
stand-in.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import httpx
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.composition import Bot, build_bot
from bot.settings import Settings
from bot.web.server import build_web_app
from handlers import create_app

log = logging.getLogger(__name__)
_settled = False


def settle_heap() -> None:
    """Move what start built (it lives as long as the process) out of the garbage
    collector's sight, once per process (``gc.freeze``): a full collection during a sweep
    then scans only what was made since. Measured: full collections paused the event loop up
    to 645 ms during a 3,000-customer sweep, and every Slack ack with it
    (bench/ack_under_sweep.py)."""
    global _settled
    if not _settled:
        gc.collect()
        gc.freeze()
        _settled = True


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.bot: Bot = build_bot(settings, transport=transport, worker_id=worker_id)
        self.app: AsyncApp = create_app(self.bot)
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self.port: int | None = None

    async def start(self, *, listen: bool = True, schedule: bool = True) -> None:
        """Start the outbox sender and the scheduler (``schedule``: tests that drive checks
        themselves leave it off), then the HTTP listener (and Socket Mode when configured)."""
        await self.bot.outbox.start()
        if schedule:
            await self.bot.scheduler.start()
        if listen:
            await self._listen()
        settle_heap()
        if self.settings.socket_mode:
            assert self.settings.slack_app_token is not None
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.slack_app_token.get_secret_value()
            )
            await self._socket.connect_async()
            log.info("connected to Slack in Socket Mode")

    async def _listen(self) -> None:
        bolt = None if self.settings.socket_mode else self.app
        self._runner = web.AppRunner(build_web_app(self.bot, bolt), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("listening on %s:%s", self.settings.host, self.port)

    async def stop(self) -> None:
        """Stop taking work, let in-flight work finish, release connections."""
        if self._socket is not None:
            await self._socket.close_async()
        if self._runner is not None:
            await self._runner.cleanup()
        await _finish_listeners()
        await self.bot.tenant_events.stop()
        await self.bot.scheduler.stop()
        await self.bot.outbox.stop()
        await self.bot.aclose()


LISTENER_GRACE = 15.0  # seconds a listener may still take after the listener stops


async def _finish_listeners() -> None:
    """Let Slack listeners that are still working after their ack() finish (a reply, a
    check, a database write). Bolt runs each in a task of its own that nothing else holds;
    they are found by the name of Bolt's runner coroutine (slack_bolt/listener/
    asyncio_runner.py), the one place Bolt does not let us keep a reference."""
    running = [
        task
        for task in asyncio.all_tasks()
        if "run_ack_function_asynchronously" in getattr(task.get_coro(), "__qualname__", "")
    ]
    if running:
        await asyncio.wait(running, timeout=LISTENER_GRACE)


async def run_until_stopped(runtime: Runtime, stop: asyncio.Event) -> None:
    await runtime.start()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runtime.stop()
