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
from collections.abc import Coroutine
from typing import Any

import httpx
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.clients.slack import delivery_problems
from bot.composition import Bot, build_bot
from bot.domain.roles import Role
from bot.settings import Settings
from bot.web import server as web_server
from bot.web.server import build_web_app
from handlers import create_app
from storage.db import one_line
from storage.scheduling import release_claims

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
        role: Role = Role.ALL,
    ) -> None:
        self.settings = settings
        self.role = role
        self.bot: Bot = build_bot(settings, transport=transport, worker_id=worker_id, role=role)
        self.app: AsyncApp = create_app(self.bot)
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    async def start(
        self, *, listen: bool = True, schedule: bool = True, verify_slack: bool = False
    ) -> None:
        """Start the outbox sender and the scheduler (``schedule``: tests that drive checks
        themselves leave it off), then the HTTP listener (and Socket Mode when configured).
        ``verify_slack`` (``serve``) checks in the background that the bot can post where it
        must, and says what to fix if not; the bot runs either way. A web replica starts no
        sender and no scheduler; a worker listens only for /healthz, /readyz and /metrics
        (:mod:`bot.domain.roles`)."""
        works = self.role.works
        if verify_slack and works:
            self._in_background(self._verify_slack(), "verify-slack")
        if works:
            await self.bot.outbox.start()
            if self.bot.pager is not None:
                await self.bot.pager.start()
        if schedule and works:
            await self.bot.scheduler.start()
        if listen:
            await self._listen()
        settle_heap()
        if self.settings.socket_mode and self.role.answers:
            assert self.settings.slack_app_token is not None
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.slack_app_token.get_secret_value()
            )
            # slack-sdk retries connecting for as long as Slack is unreachable: in the
            # background, so that start() returns and a SIGTERM meanwhile is honoured.
            self._in_background(self._connect_socket(self._socket), "socket-mode-connect")

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` beside the bot. However it ends, it ends in a log line of ours: an
        exception it did not handle is logged here (ERROR, with its traceback), never left to
        asyncio's "Task exception was never retrieved" at garbage collection."""
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error(
                "background task %s failed: %s", task.get_name(), type(error).__name__,
                exc_info=error,
            )  # fmt: skip

    async def _verify_slack(self) -> None:
        channels = {"ALERT_CHANNEL": self.settings.alert_channel or ""}
        if self.settings.onboarding_channel:
            channels["ONBOARDING_CHANNEL"] = self.settings.onboarding_channel
        problems = await delivery_problems(self.bot.slack, channels)
        for problem in problems:
            log.error("cannot post to Slack: %s", problem)
        if not problems:
            log.info("Slack delivery checked: the bot can post to %s", ", ".join(channels))
            # A fix was deployed: the backlog goes now. Shielded: a stop meanwhile must not
            # cut the UPDATE halfway (SQLAlchemy logs a cancelled connection reset as ERROR).
            await asyncio.shield(self.bot.outbox.retry_failing_now())

    @staticmethod
    async def _connect_socket(socket: AsyncSocketModeHandler) -> None:
        try:
            await socket.connect_async()
        except Exception as error:  # a bad app token: say so; the HTTP side keeps running
            log.error("cannot connect to Slack in Socket Mode (SLACK_APP_TOKEN): %s", error)
            return
        log.info("connected to Slack in Socket Mode")

    async def _listen(self) -> None:
        bolt = None if self.settings.socket_mode else self.app
        self._runner = web.AppRunner(
            build_web_app(self.bot, bolt), access_log=None,
            keepalive_timeout=web_server.HEADER_TIMEOUT, shutdown_timeout=LISTENER_GRACE,
            read_bufsize=web_server.READ_BUFFER,
        )  # fmt: skip
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("listening on %s:%s as %s", self.settings.host, self.port, self.role.value)

    async def stop(self) -> None:
        """Stop taking work, let in-flight work finish, release connections: within
        STOP_DEADLINE whatever state the bot is in (a stalled database, Slack unreachable),
        so a SIGTERM ends ``serve`` before an orchestrator's kill. Work cut at the deadline
        is not lost: check claims expire and outbox rows are retried by the next replica."""
        for task in list(self._background):
            task.cancel()
        # Not asyncio.timeout(): it waits for the cancelled work to unwind, and psycopg
        # unwinds a query on a stalled server in 5 + 5 s (psycopg/connection_async.py wait).
        stopping = asyncio.create_task(self._stop_parts(), name="stop")
        done, _ = await asyncio.wait({stopping}, timeout=STOP_DEADLINE)
        if not done:
            stopping.cancel()
            stopping.add_done_callback(lambda t: t.cancelled() or t.exception())
            log.warning(
                "stopping took longer than %.0fs: in-flight work was cut; its claims "
                "expire and its messages are retried", STOP_DEADLINE,
            )  # fmt: skip
        elif (error := stopping.exception()) is not None:
            log.warning("stopping cleanly failed: %s", one_line(error))
            await asyncio.wait({asyncio.create_task(self.bot.aclose())}, timeout=1.0)

    async def _stop_parts(self) -> None:
        if self._socket is not None:
            await self._socket.close_async()
        if self._runner is not None:
            await self._runner.cleanup()
        await _finish_listeners()
        await self.bot.tenant_events.stop()
        await self.bot.scheduler.stop(grace=SWEEP_GRACE)
        await self.bot.outbox.stop()
        if self.bot.pager is not None:
            await self.bot.pager.stop()
        async with self.bot.db.transaction() as session:
            released = await release_claims(session=session, worker=self.bot.worker_id)
        if released:
            log.info("released %d customers claimed by a sweep cut at stop", released)
        await self.bot.aclose()


LISTENER_GRACE = 4.0  # seconds a listener may still take after the listener stops
SWEEP_GRACE = 2.0  # seconds a running sweep may still take at stop; then it is cut
STOP_DEADLINE = 6.0  # seconds stop() may take in all (SIGTERM to exit stays under 10 s)


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
    """Start, run until ``stop`` is set, stop. A stop during the start is honoured at once."""
    starting = asyncio.create_task(runtime.start(verify_slack=True), name="start")
    stopping = asyncio.create_task(stop.wait(), name="wait-for-stop")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start raises here
            await stopping
    finally:
        log.info("shutting down")
        for task in (starting, stopping):
            task.cancel()
        await asyncio.gather(starting, stopping, return_exceptions=True)
        await runtime.stop()
