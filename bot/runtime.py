"""One running bot, shared by ``serve``, the demo and the tests: the bot built by the
composition root (:func:`bot.composition.build_bot`), its Slack app, the long-running parts
(outbox sender, webhook worker, scheduler) and the HTTP listener.

``serve --role all`` runs the machine's work (the sweep, the scheduled jobs, the senders) in a
:class:`CheckEngine`: a worker of its own (:attr:`Role.WORKER`) in a child process, so a
Slack request never waits behind a sweep, neither in the event loop's queue nor for the
interpreter. Measured in docs/benchmarks.md (``bench/ack_latency.py --scheduled``). The demo
and most tests run both on one loop (``check_engine=False``): the same parts, driven by the
test.

Only the settings differ between them: ``serve`` talks to Slack and Visma, the demo and the
tests point ``SLACK_API_URL`` at a local fake Web API and the Visma/Brincr URLs at the
stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp

from bot.clients.slack import delivery_problems
from bot.composition import Bot, build_bot, worker_name
from bot.core.loop import abandon_stuck_tasks, run_event_loop
from bot.domain.retrying import Backoff
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
        check_engine: bool = False,
    ) -> None:
        """``check_engine`` (``serve --role all``): the machine's work runs in a
        :class:`CheckEngine` process beside this process's listener. Ignored for the other
        roles, for an in-memory SQLite database (one connection's world) and with a
        ``transport`` (a test's, which a process of its own cannot share)."""
        self.settings = settings
        self.role = role
        worker = worker_id or worker_name()
        self.engine: CheckEngine | None = None
        shared = _shared(settings.database_url) and transport is None
        if check_engine and role is Role.ALL and shared:
            self.engine = CheckEngine(settings, worker_id=f"{worker}/checks")
        self.bot: Bot = build_bot(
            settings, transport=transport, worker_id=worker, role=role,
            wake=self.engine.wake if self.engine is not None else None,
        )  # fmt: skip
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
        (:mod:`bot.domain.roles`). With a check engine, that starts all that in its process."""
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
            await self.engine.start_scheduler()
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
        engine = self.engine
        app = build_web_app(
            self.bot, bolt,
            scheduler=engine.readiness if engine is not None else None,
            more_metrics=engine.metrics if engine is not None else None,
        )  # fmt: skip
        self._runner = web.AppRunner(
            app, access_log=None, keepalive_timeout=web_server.HEADER_TIMEOUT,
            shutdown_timeout=LISTENER_GRACE, read_bufsize=web_server.READ_BUFFER,
        )  # fmt: skip
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        log.info("listening on %s:%s as %s", self.settings.host, self.port, self.role.value)

    async def listen_privately(self, path: str) -> None:
        """A check engine's listener: ``/healthz``, ``/readyz`` and ``/metrics`` on a Unix
        socket only its ``serve`` process reaches; the metrics are this process's own (the
        database's gauges are that process's to read)."""
        app = build_web_app(self.bot, None, database_gauges=False)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=LISTENER_GRACE)
        await self._runner.setup()
        await web.UnixSite(self._runner, path).start()

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
    :attr:`Role.WORKER`; it claims rows as ``<worker>/checks``, like a replica of its own) in
    a child process.

    Why a process: on one event loop, every check in flight adds callbacks to each turn of
    the loop, and a Slack request's path through aiohttp and Bolt takes several turns, so
    acks queued behind a catch-up sweep (1.8 x a bare Bolt app's p99 at 3,000 customers). A
    thread of its own still shared the interpreter: on two busy cores an ack waited for the
    engine's thread to get a CPU and hand the interpreter back (1.53 x during a catch-up).
    A process shares nothing with the listener but the database (docs/benchmarks.md).

    What joins the two (a socket pair, and an HTTP server on a Unix socket in a private
    directory, both only the two processes reach):

    - rows the listener writes wake the engine's senders (:meth:`wake`: one byte);
    - ``/readyz`` reports the engine's own readiness (its scheduler), ``/metrics`` adds the
      engine's counters to the listener's (:meth:`readiness`, :meth:`metrics`);
    - the engine stops when the listener closes its end, also when the listener dies
      without a word (SIGKILL): the pair's end-of-file says so;
    - an engine that dies is started again (:data:`RESTART`), and ``/readyz`` says
      "failing" meanwhile; its claims expire, nothing is lost.
    """

    def __init__(self, settings: Settings, *, worker_id: str) -> None:
        self._settings = settings
        self._worker_id = worker_id
        self._schedule = self._verify_slack = False
        self._directory: str | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._channel: socket.socket | None = None
        self._session: aiohttp.ClientSession | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self.starts = 0  # how many engine processes were started (tests)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    @property
    def socket_path(self) -> str:
        assert self._directory is not None
        return os.path.join(self._directory, "engine.sock")

    async def start(self, *, schedule: bool, verify_slack: bool) -> None:
        """Start the engine process; return once its worker runs (raise if it cannot)."""
        self._schedule, self._verify_slack = schedule, verify_slack
        self._directory = tempfile.mkdtemp(prefix="brincr-engine-")  # 0700: ours alone
        self._session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=self.socket_path),
            timeout=aiohttp.ClientTimeout(total=ENGINE_ANSWER),
        )
        await self._spawn()
        self._watcher = asyncio.create_task(self._watch(), name="check-engine-watch")
        log.info("check engine started: sweeps, scheduled jobs and senders in process %s", self.pid)

    async def _spawn(self) -> None:
        assert self._directory is not None
        ours, theirs = socket.socketpair()
        process = multiprocessing.get_context("spawn").Process(
            target=engine_main, name="check-engine", daemon=False,
            args=(EngineOrders(self._settings, self._worker_id, self.socket_path,
                               self._schedule, self._verify_slack), theirs),
        )  # fmt: skip
        try:
            await asyncio.to_thread(process.start)
        finally:
            theirs.close()
        ours.setblocking(False)
        self._process, self._channel = process, ours
        self.starts += 1
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(ENGINE_START):
                said = await loop.sock_recv(ours, 4096)
        except TimeoutError:
            said = b""
            process.kill()
        if said.startswith(b"started"):
            return
        ours.close()
        await asyncio.to_thread(process.join, ENGINE_STOP)
        why = said.decode(errors="replace").removeprefix("failed ").strip()
        raise EngineFailed(why or f"the check engine did not start (exit code {process.exitcode})")

    async def _watch(self) -> None:
        """Start the engine again whenever it ends without being told to: after
        :data:`RESTART`'s wait, doubling while it keeps ending (or failing to start) soon."""
        failures = 0
        while not self._stopping:
            process = self._process
            assert process is not None
            started = time.monotonic()
            await _ended(process)
            if self._stopping:
                return
            log.error(
                "the check engine (process %s) ended with exit code %s; starting it again "
                "(its claims expire, nothing is lost)", process.pid, process.exitcode,
            )  # fmt: skip
            if self._channel is not None:
                self._channel.close()
            if time.monotonic() - started > RESTART_RESET:
                failures = 0
            while not self._stopping:
                failures += 1
                await asyncio.sleep(RESTART.ceiling(failures).total_seconds())
                try:
                    await self._spawn()
                except EngineFailed as error:
                    log.error("the check engine did not start again: %s", error)
                    continue
                log.info("check engine started again in process %s", self.pid)
                break

    def wake(self) -> None:
        """A row to send was written: the engine's senders look now (from the listener's
        loop). A full pair means wakes are already waiting to be read: nothing to add."""
        channel = self._channel
        if channel is None or self._stopping:
            return
        with contextlib.suppress(OSError):  # full, or the engine is gone: it looks on start
            channel.send(WAKE)

    async def start_scheduler(self) -> None:
        """Start the engine's scheduler after a ``start(schedule=False)`` (benchmarks)."""
        self._schedule = True  # and again after a restart
        assert self._channel is not None
        await asyncio.get_running_loop().sock_sendall(self._channel, SCHEDULE)

    async def readiness(self) -> tuple[bool, str]:
        """The engine's own ``/readyz`` (its scheduler), as a probe of the listener's."""
        if self.pid is None:
            return False, "the check engine is not running (it is started again)"
        try:
            async with self._get("/readyz") as response:
                answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            return False, f"the check engine does not answer: {one_line(error)}"
        failing = [name for name, check in answer["checks"].items() if not check["ok"]]
        return not failing, "ok" if not failing else "check engine: " + ", ".join(failing)

    async def metrics(self) -> str | None:
        """The engine's own metrics (counters, histograms, its last sweep), or None."""
        if self.pid is None:
            return None
        try:
            async with self._get("/metrics") as response:
                return await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("the check engine's metrics are missing: %s", one_line(error))
            return None

    def _get(self, path: str) -> Any:
        assert self._session is not None
        return self._session.get(f"http://check-engine{path}")

    async def stop(self) -> None:
        """Tell the engine to stop (end of its pair) and wait for it (its own stop deadline
        applies); kill it if it is still there ENGINE_STOP later."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._channel is not None:
            self._channel.close()
        process = self._process
        if process is not None and process.pid is not None:
            await asyncio.to_thread(process.join, STOP_DEADLINE + ENGINE_STOP)
            if process.exitcode is None:
                log.warning("the check engine did not stop in time: killed")
                process.kill()
                await asyncio.to_thread(process.join, ENGINE_STOP)
        if self._session is not None:
            await self._session.close()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)


class EngineFailed(Exception):
    """The check engine's process did not start (why, in one line)."""


async def _ended(process: multiprocessing.process.BaseProcess) -> None:
    """Wait for ``process`` to end, without a thread: its sentinel is readable then."""
    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    def end() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(process.sentinel, end)
    try:
        await ended
    finally:
        loop.remove_reader(process.sentinel)
    await asyncio.to_thread(process.join)  # reaped: exitcode known


@dataclass(frozen=True)
class EngineOrders:
    """What a check engine process is told when it starts (``multiprocessing`` pickles it)."""

    settings: Settings
    worker_id: str
    socket_path: str
    schedule: bool
    verify_slack: bool


def engine_main(orders: EngineOrders, channel: socket.socket) -> None:
    """The check engine process: a worker until its listener closes the pair (or dies)."""
    from bot.core.logs import configure_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the listener, who stops us
    configure_logging(orders.settings.log_format, orders.settings.log_level)
    run_event_loop(_engine(orders, channel))


async def _engine(orders: EngineOrders, channel: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # a process group's stop reaches us too
    channel.setblocking(False)
    worker = Runtime(orders.settings, worker_id=orders.worker_id, role=Role.WORKER)
    try:
        await worker.start(listen=False, schedule=orders.schedule, verify_slack=orders.verify_slack)
        await worker.listen_privately(orders.socket_path)
    except BaseException as error:  # the listener's start raises it; nothing stays up
        with contextlib.suppress(OSError):
            channel.send(b"failed " + one_line(error).encode())
        await worker.stop()
        return

    def heard() -> None:
        try:
            said = channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            said = b""
        if not said:  # the listener closed its end, or died
            loop.remove_reader(channel.fileno())
            stop.set()
            return
        if SCHEDULE in said:
            worker._in_background(worker.start_scheduler(), "start-scheduler")
        log.debug("woken by the listener")
        worker.bot.services.wake_outbox()

    loop.add_reader(channel.fileno(), heard)
    channel.send(b"started")
    await stop.wait()
    await worker.stop()
    channel.close()
    await abandon_stuck_tasks()


WAKE = b"w"
SCHEDULE = b"s"
LISTENER_GRACE = 4.0  # seconds a listener may still take after the listener stops
SWEEP_GRACE = 2.0  # seconds a running sweep may still take at stop; then it is cut
STOP_DEADLINE = 6.0  # seconds stop() may take in all (SIGTERM to exit stays under 10 s)
ENGINE_START = 60.0  # seconds the check engine may take to start (imports, migrations done)
ENGINE_STOP = 2.0  # seconds a killed (or stopped) engine process gets to be reaped
ENGINE_ANSWER = 2.0  # seconds the engine has to answer /readyz or /metrics for the listener
# An engine that ended is started again after 1 s, doubling up to 30 s (no jitter: one process)
RESTART = Backoff(first=timedelta(seconds=1), cap=timedelta(seconds=30))
RESTART_RESET = 60.0  # an engine that ran this long starts the backoff over


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
