"""A real ``serve`` process killed (SIGKILL) after it wrote an alert but before Slack took it:
the restarted process posts it exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import Notification
from tests.harness import ALERTS, BOT_TOKEN, SCOPES, SIGNING_SECRET
from tests.processes import free_port, kill_whole, serve, wait_ready

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def alerts(slack: FakeSlack) -> list[dict[str, object]]:
    return [m for m in slack.messages(ALERTS) if "thread_ts" not in m]


async def outbox_attempts(url: str) -> list[tuple[str, int]]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            rows = await session.execute(select(Notification.status, Notification.attempts))
            return [(status, attempts) for status, attempts in rows]
    finally:
        await db.close()


async def until(predicate: Any, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Wait for ``predicate()`` (async) to hold, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def outbox_rows(url: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(Notification)) or 0)
    finally:
        await db.close()


async def test_an_alert_written_before_a_kill_is_posted_once_after_restart(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, tmp_path: Path
) -> None:
    sim.approve(TENANT, "production", list(SCOPES))
    sim.remove(TENANT)  # the customer removed the app: the first check says revoked
    db = Database(sqlite_url)
    async with db.transaction() as session:
        new = NewCustomer("12345678", "Bouwbedrijf", Environment.PRODUCTION, TENANT)
        await add_customer(new, session=session, state=State.PENDING)
    await db.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
        **sim.settings_env(),
        "DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "ALERT_CHANNEL": ALERTS, "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "2s",
        "HOST": "127.0.0.1", "PORT": str(free_port()),
    }  # fmt: skip
    slack.fail("chat.postMessage", status=503, times=1000)  # Slack is down
    first = serve(env, tmp_path / "first.log")
    try:
        await slack.wait_for("chat.postMessage", 1, timeout=30)  # the alert is written

        async def attempt_recorded() -> bool:
            return [a for _, a in await outbox_attempts(sqlite_url)] >= [1]

        await until(attempt_recorded)
    finally:
        kill_whole(first)  # serve and its check engine, as a container is killed
    assert alerts(slack) == []
    assert await outbox_rows(sqlite_url) == 1

    slack.clear_failures()
    env["PORT"] = str(free_port())
    second = serve(env, tmp_path / "second.log")
    try:
        await wait_ready(int(env["PORT"]))
        await slack.wait_for("chat.postMessage", 1, timeout=30, predicate=lambda c: not c.failed)
        checks = sim.counters.token_requests()

        async def settled() -> bool:  # sent, and two more sweeps (and sender ticks) since
            sent = await outbox_attempts(sqlite_url) == [("sent", 1)]
            return sent and sim.counters.token_requests() >= checks + 2

        await until(settled)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    (alert,) = alerts(slack)
    assert "revoked" in str(alert["text"])
    assert await outbox_rows(sqlite_url) == 1
