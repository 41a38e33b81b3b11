"""``brincr-bot serve`` as a real process: an empty SLACK_APP_TOKEN means HTTP mode; at start
it says what stops it from posting to the alert channel; SIGTERM ends it within 10 s whatever
state it is in (Socket Mode unable to connect, the database stalled)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import Customer
from tests.harness import ALERTS, BOT_TOKEN, SCOPES, SIGNING_SECRET, unexpected_errors
from tests.processes import free_port

STOP_WITHIN = 10.0


def serve_env(
    slack_api_url: str, sim: Simulator, database_url: str, **extra: str
) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))}
    return {
        **keep, **sim.settings_env(), "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack_api_url, "ALERT_CHANNEL": ALERTS,
        "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "2s", "HOST": "127.0.0.1",
        "PORT": str(free_port()), "LOG_FORMAT": "text", **extra,
    }  # fmt: skip


class Served:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.port = int(env["PORT"])
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from bot.cli import main; main()", "serve"],
                env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    async def wait_for_log(self, needle: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.process.poll() is None, self.text()[-3000:]
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.text()[-3000:]}"
            await asyncio.sleep(0.1)

    def terminate_and_time(self) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        return code, time.monotonic() - started


async def test_an_empty_slack_app_token_as_in_env_example_runs_http_mode(
    fakes: tuple[FakeSlack, Simulator], sqlite_url: str, tmp_path: Path
) -> None:
    slack, sim = fakes
    served = Served(
        serve_env(slack.api_url, sim, sqlite_url, SLACK_APP_TOKEN=""), tmp_path / "s.log"
    )
    await served.wait_for_log("listening on")
    async with httpx.AsyncClient() as client:
        unsigned = await client.post(f"http://127.0.0.1:{served.port}/slack/events", content="x")
    code, took = served.terminate_and_time()
    assert unsigned.status_code == 401  # HTTP mode: the Slack endpoint is there, and checks
    assert code == 0 and took < STOP_WITHIN, served.text()[-3000:]
    assert "Socket Mode" not in served.text()
    assert "check engine started" in served.text()  # serve's checks run in a process of their own
    assert unexpected_errors(served.text()) == []


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("outside", "cannot post to Slack: ALERT_CHANNEL C0ALERTS: the bot is not a member of "
                    "this private channel: /invite the bot to it"),
        ("invalid_auth", "cannot post to Slack: SLACK_BOT_TOKEN is refused by Slack "
                         "(invalid_auth): set the bot token"),
        # Slack's edge (or a proxy) answering with an error page, not Slack's JSON
        ("auth.test text/html", "cannot post to Slack: Slack is not answering at SLACK_API_URL "
                                "(HTTP 503)"),
        ("auth.test text/plain", "cannot post to Slack: Slack is not answering at "
                                 "SLACK_API_URL (HTTP 503)"),
        ("auth.test application/json", "cannot post to Slack: Slack is not answering at "
                                       "SLACK_API_URL (HTTP 503)"),
        ("conversations.info text/plain", "cannot post to Slack: ALERT_CHANNEL C0ALERTS: Slack "
                                          "answers HTTP 503 for this channel"),
    ],
)  # fmt: skip
async def test_serve_says_at_start_what_stops_it_posting_alerts_and_still_runs(
    fakes: tuple[FakeSlack, Simulator], sqlite_url: str, tmp_path: Path, fault: str, says: str
) -> None:
    slack, sim = fakes
    if fault == "outside":
        slack.outside_channels.add(ALERTS)
    elif " " in fault:
        method, page = fault.split()
        slack.fail(method, status=503, page=page)
    else:
        slack.fail("auth.test", error=fault)
    served = Served(serve_env(slack.api_url, sim, sqlite_url), tmp_path / "s.log")
    await served.wait_for_log("cannot post to Slack")
    await served.wait_for_log("listening on")
    code, _ = served.terminate_and_time()
    assert code == 0
    assert unexpected_errors(served.text()) == [
        line for line in served.text().splitlines() if says in line
    ]
    assert len(unexpected_errors(served.text())) == 1


async def test_serve_checks_at_start_that_it_can_post_to_the_alert_channel(
    fakes: tuple[FakeSlack, Simulator], sqlite_url: str, tmp_path: Path
) -> None:
    slack, sim = fakes
    served = Served(serve_env(slack.api_url, sim, sqlite_url), tmp_path / "s.log")
    await served.wait_for_log("Slack delivery checked: the bot can post to ALERT_CHANNEL")
    served.terminate_and_time()
    assert [c.params["channel"] for c in slack.calls_to("conversations.info")] == [ALERTS]
    assert [c.verb for c in slack.calls_to("conversations.info")] == ["GET"]  # as slack-sdk sends
    assert unexpected_errors(served.text()) == []


def test_empty_app_token_and_signing_secret_name_the_signing_secret(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "SLACK_APP_TOKEN": "",
        "SLACK_SIGNING_SECRET": "", "SLACK_BOT_TOKEN": "xoxb-1", "ALERT_CHANNEL": "C1",
        "BRINCR_SCOPES": "a", "PRODUCTION_CLIENT_ID": "i", "PRODUCTION_CLIENT_SECRET": "s",
    }  # fmt: skip
    command = [sys.executable, "-c", "from bot.cli import main; main()", "serve"]
    result = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "configuration error: SLACK_SIGNING_SECRET is not set (HTTP mode needs it; or set "
        "SLACK_APP_TOKEN)"
    ]


async def test_sigterm_stops_serve_within_10s_while_socket_mode_cannot_connect(
    fakes: tuple[FakeSlack, Simulator], sqlite_url: str, tmp_path: Path
) -> None:
    slack, sim = fakes
    slack.fail("apps.connections.open", status=503)  # Slack's Socket Mode side is down
    env = serve_env(slack.api_url, sim, sqlite_url, SLACK_APP_TOKEN="xapp-1-test")
    served = Served(env, tmp_path / "s.log")
    await served.wait_for_log("listening on")
    await slack.wait_for("apps.connections.open", timeout=20)
    code, took = served.terminate_and_time()
    assert code == 0 and took < STOP_WITHIN, (took, served.text()[-3000:])


async def test_sigterm_cuts_a_running_sweep_within_10s_and_releases_its_claims(
    fakes: tuple[FakeSlack, Simulator], sqlite_url: str, tmp_path: Path
) -> None:
    slack, sim = fakes
    db = Database(sqlite_url)
    async with db.transaction() as session:
        for n in range(3):
            tenant = f"00000000-0000-4000-8000-{n:012d}"
            sim.approve(tenant, "production", list(SCOPES))
            new = NewCustomer(f"{70000000 + n}", f"Klant {n}", Environment.PRODUCTION, tenant)
            await add_customer(new, session=session, state=State.PENDING)
    sim.fault("production", "token", "timeout")  # every token request hangs
    env = serve_env(slack.api_url, sim, sqlite_url, CHECK_TIMEOUT="60s")
    served = Served(env, tmp_path / "s.log")
    await served.wait_for_log("listening on")

    async def claimed() -> int:
        async with db.transaction() as session:
            rows = await session.scalars(select(Customer).where(Customer.claimed_by.is_not(None)))
            return len(list(rows))

    deadline = time.monotonic() + 20
    while await claimed() < 3:
        assert time.monotonic() < deadline, served.text()[-3000:]
        await asyncio.sleep(0.1)
    code, took = served.terminate_and_time()
    left = await claimed()
    await db.close()
    assert code == 0 and took < STOP_WITHIN, (took, served.text()[-3000:])
    assert left == 0, served.text()[-3000:]
    assert unexpected_errors(served.text()) == []


class StallingProxy:
    """A TCP proxy to PostgreSQL that can stall: connections stay open, nothing passes."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.stalled = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.stalled.is_set():  # accepted, never answered
                self._open.append(client)
                continue
            server = socket.create_connection(self.upstream)
            self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            while self.stalled.is_set():
                time.sleep(0.05)
            if not data:
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        """Refuse from now on: the listening socket and every connection are closed
        (shut down first: a bare close() leaves a socket blocked in accept() listening)."""
        for sock in (self.sock, *self._open):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@pytest.fixture
def stalling_postgres(postgres_url: str) -> Iterator[tuple[str, StallingProxy]]:
    from sqlalchemy.engine import make_url

    from tests.conftest import _truncate

    _truncate(postgres_url)
    url = make_url(postgres_url)
    proxy = StallingProxy((url.host or "127.0.0.1", url.port or 5432))
    yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy
    proxy.close()


@pytest.mark.postgres
async def test_readyz_is_503_with_detail_and_sigterm_stops_serve_while_the_database_stalls(
    fakes: tuple[FakeSlack, Simulator],
    stalling_postgres: tuple[str, StallingProxy],
    tmp_path: Path,
) -> None:
    slack, sim = fakes
    url, proxy = stalling_postgres
    served = Served(serve_env(slack.api_url, sim, url), tmp_path / "s.log")
    await served.wait_for_log("scheduler started")
    await asyncio.sleep(1)
    proxy.stalled.set()
    async with httpx.AsyncClient(timeout=15) as client:  # ticks and the outbox now wait
        ready = await client.get(f"http://127.0.0.1:{served.port}/readyz")
    assert ready.status_code == 503  # with detail, never a 500
    assert ready.json()["checks"]["database"] == {"ok": False, "detail": "failing"}
    await served.wait_for_log("not ready: database: no answer within 5s")
    code, took = served.terminate_and_time()
    assert code == 0 and took < STOP_WITHIN, (took, served.text()[-3000:])


@pytest.mark.postgres
async def test_a_database_refusing_connections_is_a_503_with_detail_and_a_line_per_tick(
    fakes: tuple[FakeSlack, Simulator],
    stalling_postgres: tuple[str, StallingProxy],
    tmp_path: Path,
) -> None:
    slack, sim = fakes
    url, proxy = stalling_postgres
    served = Served(serve_env(slack.api_url, sim, url, CHECK_INTERVAL="1m"), tmp_path / "s.log")
    await served.wait_for_log("scheduler started")
    await asyncio.sleep(1)
    before = len(served.text().splitlines())
    proxy.close()
    await asyncio.sleep(4)
    async with httpx.AsyncClient(timeout=15) as client:
        ready = await client.get(f"http://127.0.0.1:{served.port}/readyz")
    code, took = served.terminate_and_time()
    outage = served.text().splitlines()[before:]
    assert ready.status_code == 503
    database = ready.json()["checks"]["database"]
    assert database == {"ok": False, "detail": "failing"}  # public: no server detail
    assert any("not ready: database: OperationalError" in line for line in outage)
    assert code == 0 and took < STOP_WITHIN
    assert not any(line.startswith("Traceback") for line in outage), "\n".join(outage)
    assert len(outage) < 40, "\n".join(outage)  # a line per failing tick, 2 s ticks, 4 s
    assert unexpected_errors(served.text()) == []
