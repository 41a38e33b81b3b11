"""Two real ``brincr-bot serve`` processes on one PostgreSQL: every customer is checked once
per interval and every incident is posted once (the stand-in and fake Slack are shared)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import CheckResult
from tests.conftest import _truncate
from tests.harness import ALERTS, BOT_TOKEN, SCOPES, SIGNING_SECRET

pytestmark = pytest.mark.postgres
INTERVAL = 2.0
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeSlack, Simulator]]:
    async with FakeSlack() as slack, Simulator() as sim:
        yield slack, sim


def serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "serve"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def wait_ready(port: int, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"replica on port {port} never became ready")


async def test_two_replicas_check_each_customer_once_per_interval_and_alert_once(
    postgres_url: str, fakes: tuple[FakeSlack, Simulator], tmp_path: Path
) -> None:
    slack, sim = fakes
    _truncate(postgres_url)
    db = Database(postgres_url)
    tenants = [f"00000000-0000-4000-8000-{i:012d}" for i in range(30)]
    async with db.transaction() as session:
        for i, tenant in enumerate(tenants):
            sim.approve(tenant, "production", list(SCOPES))
            new = NewCustomer(f"{60000000 + i}", f"Klant {i}", Environment.PRODUCTION, tenant)
            await add_customer(new, session=session, state=State.PENDING)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
        **sim.settings_env(),
        "DATABASE_URL": postgres_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "ALERT_CHANNEL": ALERTS, "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "2s",
        "HOST": "127.0.0.1", "LOG_FORMAT": "text",
    }  # fmt: skip
    ports = [free_port(), free_port()]
    logs = [tmp_path / "replica-a.log", tmp_path / "replica-b.log"]
    replicas = [serve({**env, "PORT": str(p)}, log) for p, log in zip(ports, logs, strict=True)]
    try:
        for port in ports:
            await wait_ready(port)
        await asyncio.sleep(2 * INTERVAL)
        sim.revoke(tenants[0], ["brincr:order"])
        await asyncio.sleep(3 * INTERVAL)
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        codes = [replica.wait(timeout=30) for replica in replicas]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]

    async with db.transaction() as session:
        rows = (
            await session.execute(select(CheckResult.customer_id, CheckResult.checked_at))
        ).all()
    await db.close()
    by_customer: dict[int, list[float]] = {}
    for customer_id, at in rows:
        by_customer.setdefault(customer_id, []).append(at.timestamp())
    assert len(by_customer) == len(tenants)
    for times in by_customer.values():
        times.sort()
        assert len(times) >= 3
        # never two checks of one customer within one interval, whichever replica ran them
        # (a check may run up to half a scheduler tick, 0.1 s, before its slot)
        assert all(b - a >= INTERVAL - 0.11 for a, b in itertools.pairwise(times)), times
    # both replicas did part of the work
    for log in logs:
        assert "sweep checked" in log.read_text()
    alerts = [m for m in slack.messages(ALERTS) if "thread_ts" not in m]
    assert len(alerts) == 1, alerts
    assert "brincr:order" in str(alerts[0]["blocks"])
