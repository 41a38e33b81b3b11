"""One running bot, shared by ``serve``, the demo and the tests: the bot built by the
composition root (:func:`bot.composition.build_bot`), its Slack app, the long-running parts
(outbox sender, webhook worker, scheduler) and the HTTP listener.

``serve --role all`` runs the machine's work (the sweep, the scheduled jobs, the senders) in a
:class:`CheckEngine`: a worker of its own (:attr:`Role.WORKER`: its own database engine and
HTTP clients) on its own event loop in a thread, so a Slack request never waits in the event
loop's queue behind a sweep's callbacks; it waits at most for the interpreter to switch
threads (``SWITCH_INTERVAL``). Measured in docs/benchmarks.md (``bench/ack_latency.py
--scheduled``). The demo and most tests run both on one loop (``check_thread=False``): the
same parts, driven by the test.

Only the settings differ between them: ``serve`` talks to Slack and Visma, the demo and the
tests point ``SLACK_API_URL`` at a local fake Web API and the Visma/Brincr URLs at the
stand-in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.checks.scheduler import Scheduler
from bot.clients.slack import delivery_problems
from bot.composition import Bot, build_bot, worker_name
from bot.core.loop import run_event_loop
from bot.domain.roles import Role
from bot.settings import Settings
from bot.web import server as web_server
from bot.web.server import build_web_app
from handlers import create_app
from storage.db import check_url, one_line, sqlite_path
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
        check_thread: bool = False,
    ) -> None:
        """``check_thread`` (``serve --role all``): the machine's work runs in a
        :class:`CheckEngine` beside this process's listener, not on its event loop. Ignored
        for the other roles and for an in-memory SQLite database (one connection's world)."""
        self.settings = settings
        self.role = role
        worker = worker_id or worker_name()
        self.engine: CheckEngine | None = None
        if check_thread and role is Role.ALL and _shared(settings.database_url):
            self.engine = CheckEngine(settings, transport=transport, worker_id=f"{worker}/checks")
        self.bot: Bot = build_bot(
            settings, transport=transport, worker_id=worker, role=role,
            wake=self.engine.wake if self.engine is not None else None,
        )  # fmt: skip
        self.app: AsyncApp = create_app(self.bot)
        self._runner: web.AppRunner | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.port: int | None = None

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler that runs this process's sweeps (the check engine's, if any)."""
        if self.engine is not None and self.engine.runtime is not None:
            return self.engine.runtime.bot.scheduler
        return self.bot.scheduler

    async def start(
        self, *, listen: bool = True, schedule: bool = True, verify_slack: bool = False
    ) -> None:
        """Start the outbox sender and the scheduler (``schedule``: tests that drive checks
        themselves leave it off), then the HTTP listener (and Socket Mode when configured).
        ``verify_slack`` (``serve``) checks in the background that the bot can post where it
        must, and says what to fix if not; the bot runs either way. A web replica starts no
        sender and no scheduler; a worker listens only for /healthz, /readyz and /metrics
        (:mod:`bot.domain.roles`). With a check engine, it starts all that in its thread."""
        works = self.role.works
        if self.engine is not None:
            await self.engine.start(schedule=schedule, verify_slack=verify_slack)
        else:
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

    async def start_scheduler(self) -> None:
        """Start the scheduler after a ``start(schedule=False)`` (benchmarks), wherever it
        runs."""
        if self.engine is not None:
            await self.engine.run(lambda worker: worker.bot.scheduler.start())
        else:
            await self.bot.scheduler.start()

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
            build_web_app(self.bot, bolt, scheduler=self.scheduler), access_log=None,
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
        # The check engine stops beside the listener: each within the same deadline.
        engine = self.engine.stop() if self.engine is not None else asyncio.sleep(0)
        await asyncio.gather(self._stop_own_parts(), engine)

    async def _stop_own_parts(self) -> None:
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


def _shared(url: str) -> bool:
    """Whether a second database engine in this process sees the same database."""
    return check_url(url) != "sqlite" or sqlite_path(url) is not None


class CheckEngine:
    """The machine's half of ``serve --role all``: a worker (:class:`Runtime` with
    :attr:`Role.WORKER`, its own database engine and HTTP clients; it claims rows as
    ``<worker>/checks``, like a replica of its own) on an event loop of its own, in a thread.

    Why: on one event loop, every check in flight adds callbacks to each turn of the loop, and
    a Slack request's path through aiohttp and Bolt takes several turns, so acks queued behind
    a catch-up sweep (1.8 × a bare Bolt app's p99 at 3,000 customers; docs/benchmarks.md).
    In a thread of its own, the sweep shares only the interpreter with the listener, which
    takes it back every ``SWITCH_INTERVAL``. Rows the listener writes wake the engine's
    senders across threads (:meth:`wake`); ``/readyz`` reports the engine's scheduler."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None,
        worker_id: str,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._worker_id = worker_id
        self._thread = threading.Thread(target=self._main, name="check-engine", daemon=True)
        self._started: concurrent.futures.Future[Runtime] = concurrent.futures.Future()
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.runtime: Runtime | None = None

    async def start(self, *, schedule: bool, verify_slack: bool) -> None:
        """Start the thread and the worker in it; return once it runs (raise if it cannot)."""
        self._schedule, self._verify_slack = schedule, verify_slack
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()
        self.runtime = await asyncio.wrap_future(self._started)
        log.info("check engine started: sweeps, scheduled jobs and senders on their own thread")

    async def run(self, work: Callable[[Runtime], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` on the engine's loop, with its worker, and wait for it."""
        assert self._loop is not None and self.runtime is not None
        done = asyncio.run_coroutine_threadsafe(work(self.runtime), self._loop)
        await asyncio.wrap_future(done)

    def wake(self) -> None:
        """A row to send was written: the engine's senders look now (from any thread)."""
        loop, runtime = self._loop, self.runtime
        if loop is None or runtime is None:
            return  # not started yet: its senders look when they start
        with contextlib.suppress(RuntimeError):  # the loop closed: stopping anyway
            loop.call_soon_threadsafe(runtime.bot.services.wake_outbox)

    async def stop(self) -> None:
        """Stop the worker (its own stop deadline applies), then let its loop close: return
        when the thread ended, or THREAD_EXIT after the worker stopped (a task stuck on a
        stalled database; the thread is a daemon and the process exits without it)."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)
        await asyncio.wrap_future(self._stopped)
        await asyncio.to_thread(self._thread.join, THREAD_EXIT)

    def _main(self) -> None:
        try:
            run_event_loop(self._run())
        except BaseException as error:  # building the worker failed: the listener says so
            if not self._started.done():
                self._started.set_exception(error)
        finally:
            if not self._stopped.done():
                self._stopped.set_result(None)

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        worker = Runtime(
            self._settings, transport=self._transport, worker_id=self._worker_id,
            role=Role.WORKER,
        )  # fmt: skip
        try:
            await worker.start(
                listen=False, schedule=self._schedule, verify_slack=self._verify_slack
            )
        except BaseException as error:  # the listener's start raises it; nothing stays up
            self._started.set_exception(error)
            await worker.stop()
            return
        self._loop = asyncio.get_running_loop()
        self._started.set_result(worker)
        try:
            await self._stop.wait()
        finally:
            await worker.stop()
            if not self._stopped.done():  # cancelled when the listener's stop ran out of time
                self._stopped.set_result(None)


LISTENER_GRACE = 4.0  # seconds a listener may still take after the listener stops
SWEEP_GRACE = 2.0  # seconds a running sweep may still take at stop; then it is cut
STOP_DEADLINE = 6.0  # seconds stop() may take in all (SIGTERM to exit stays under 10 s)
# Seconds the check engine's thread may hold the interpreter while the listener waits for it
# (Python's default is 5 ms). An ack takes several turns of the listener's loop, each a wait
# for the interpreter: measured at 3,000 customers (docs/benchmarks.md), 1 ms left the
# catch-up's p99 at 1.5-1.7 x a bare Bolt app's, 0.2 ms at 1.2-1.4 x. A thread nobody waits
# for is never interrupted, so a shorter interval costs the sweep nothing while idle.
SWITCH_INTERVAL = 0.0002
THREAD_EXIT = 1.0  # seconds the check engine's loop gets to close after its worker stopped


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
