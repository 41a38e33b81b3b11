"""One running bot, shared by ``serve``, the demo and the tests: the services, the Slack app,
the long-running components (scheduler, outbox sender) and the HTTP listener.

Only the transports differ between them: ``serve`` talks to Slack and Visma, the demo and the
tests inject a Web API client pointed at a local fake and the Visma/Brincr stand-in.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import httpx
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import create_app
from bot.checks import CheckService
from bot.features import install_features
from bot.scheduler import Scheduler
from bot.server import build_web_app
from bot.services import Services
from bot.settings import Settings
from bot.slack import web_client
from storage.db import Database

log = logging.getLogger(__name__)


def worker_name() -> str:
    """Who claims rows in the database: host and process, unique among replicas."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        client: AsyncWebClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id or worker_name()
        self.db = Database(settings.database_url)
        self.client = client or web_client(settings)
        checker = CheckService(settings, self.db, transport=transport)
        self.services = Services(settings=settings, db=self.db, checker=checker)
        checker.listeners = self.services.check_listeners
        self.services.extras["worker_id"] = self.worker_id
        self.services.extras["client"] = self.client
        self.outbox = install_features(self.services, self.client)
        self.app: AsyncApp = create_app(self.services, self.client)
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self.port: int | None = None

    @property
    def scheduler(self) -> Scheduler:
        scheduler: Scheduler = self.services.extras["scheduler"]
        return scheduler

    async def start(self, *, listen: bool = True, schedule: bool = True) -> None:
        """Start the components and the scheduler (``schedule``: tests that drive checks
        themselves leave it off), then the HTTP listener (and Socket Mode when configured)."""
        for component in self.services.components:
            await component.start()
        if schedule:
            await self.scheduler.start()
        if listen:
            await self._listen()
        if self.settings.socket_mode:
            assert self.settings.slack_app_token is not None
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.slack_app_token.get_secret_value()
            )
            await self._socket.connect_async()
            log.info("connected to Slack in Socket Mode")

    async def _listen(self) -> None:
        bolt = None if self.settings.socket_mode else self.app
        self._runner = web.AppRunner(build_web_app(self.services, bolt), access_log=None)
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
        await self.scheduler.stop()
        for component in reversed(self.services.components):
            await component.stop()
        await self.services.checker.aclose()
        await self.db.close()


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
