"""Two real ``brincr-bot serve`` processes on one PostgreSQL: every customer is checked once
per interval and every incident is posted once (the stand-in and fake Slack are shared)."""

from __future__ import annotations

import itertools
import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import AlertHold, CheckResult, Customer, Notification, PagerEvent
from storage.statuses import NotificationStatus, PagerEventStatus
from tests.conftest import _truncate
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.harness import ALERTS, BOT_TOKEN, SCOPES, SIGNING_SECRET, eventually
from tests.processes import free_port, kill_whole, seed_fleet, serve, wait_ready

pytestmark = pytest.mark.postgres
INTERVAL = 2.0


async def test_two_replicas_check_each_customer_once_per_interval_and_alert_once(
    postgres_url: str, fakes: tuple[FakeSlack, Simulator], tmp_path: Path
) -> None:
    slack, sim = fakes
    tenants = await seed_fleet(postgres_url, sim, 30, first_kvk=60000000)
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
    db = Database(postgres_url)

    async def checks() -> dict[int, list[float]]:
        async with db.transaction() as session:
            rows = await session.execute(select(CheckResult.customer_id, CheckResult.checked_at))
            by_customer: dict[int, list[float]] = {}
            for customer_id, at in rows:
                by_customer.setdefault(customer_id, []).append(at.timestamp())
        return by_customer

    async def unsent() -> int:
        async with db.transaction() as session:
            pending = Notification.status == NotificationStatus.PENDING
            return int(await session.scalar(select(func.count()).where(pending)) or 0)

    def posted() -> bool:
        return any("thread_ts" not in m for m in slack.messages(ALERTS))

    async def everyone_checked() -> bool:
        return len(await checks()) == len(tenants)

    async def checks_of_broken() -> int:
        async with db.transaction() as session:
            broken = select(Customer.id).where(Customer.tenant_id == tenants[0])
            return len((await checks()).get(int(await session.scalar(broken) or 0), []))

    async def settled() -> bool:
        """Every customer checked three times; both replicas swept; the alert's customer
        checked again since it was posted (a second alert would be made then) and nothing is
        left to send. Waited for, not slept: a slow run only takes longer."""
        if await unsent():
            return False
        by_customer = await checks()
        if len(by_customer) < len(tenants) or min(map(len, by_customer.values())) < 3:
            return False
        if not all("sweep checked" in log.read_text() for log in logs):
            return False
        return await checks_of_broken() > checks_when_posted

    try:
        for port in ports:
            await wait_ready(port)
        await eventually(everyone_checked, timeout=30, every=0.2)
        sim.revoke(tenants[0], ["brincr:order"])
        await eventually(lambda: _true(posted()), timeout=30)
        checks_when_posted = await checks_of_broken()
        await eventually(settled, timeout=60, every=0.2)
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        codes = [replica.wait(timeout=30) for replica in replicas]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]

    by_customer = await checks()
    await db.close()
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


async def _true(value: bool) -> bool:
    return value


async def test_a_replica_killed_during_a_hold_loses_no_alert_and_doubles_none(
    postgres_url: str, fakes: tuple[FakeSlack, Simulator], pd: FakePagerDuty, tmp_path: Path
) -> None:
    """#23: a held alert is a row; the replica that held it is killed (SIGKILL) before it is
    due, the other replica (started after the kill) releases it: one alert, one page."""
    slack, sim = fakes
    _truncate(postgres_url)
    db = Database(postgres_url)
    tenants = [f"00000000-0000-4000-9000-{i:012d}" for i in range(10)]
    now = utcnow()
    async with db.transaction() as session:
        for i, tenant in enumerate(tenants):
            sim.approve(tenant, "production", list(SCOPES))
            new = NewCustomer(f"{61000000 + i}", f"Klant {i}", Environment.PRODUCTION, tenant)
            customer = await add_customer(new, session=session, state=State.PENDING)
            customer.next_check_at = now + timedelta(seconds=0.5 + i)  # one slot each
    sim.remove(tenants[0])  # the first due: revoked, alone
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
        **sim.settings_env(),
        "DATABASE_URL": postgres_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "ALERT_CHANNEL": ALERTS, "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "10s",
        "ALERT_GROUP_WAIT": "4s", "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PAGERDUTY_EVENTS_URL": pd.url, "HOST": "127.0.0.1", "LOG_FORMAT": "text",
    }  # fmt: skip

    async def held() -> bool:
        async with db.transaction() as session:
            return bool(await session.scalar(select(func.count()).select_from(AlertHold)))

    first = serve({**env, "PORT": str(free_port())}, tmp_path / "killed.log")
    try:
        await eventually(held, timeout=20)
    finally:
        kill_whole(first)  # serve and its check engine, as a container is killed
    assert [m for m in slack.messages(ALERTS) if "thread_ts" not in m] == []
    port = free_port()
    second = serve({**env, "PORT": str(port)}, tmp_path / "second.log")
    try:
        await wait_ready(port)
        await slack.wait_for("chat.postMessage", 1, timeout=20)

        async def quiet() -> bool:  # nothing held, nothing left to send or page: final
            async with db.transaction() as session:
                unsent = Notification.status == NotificationStatus.PENDING
                unpaged = PagerEvent.status == PagerEventStatus.PENDING
                return not any(
                    [
                        await session.scalar(select(func.count()).select_from(AlertHold)),
                        await session.scalar(select(func.count()).where(unsent)),
                        await session.scalar(select(func.count()).where(unpaged)),
                    ]
                )

        await eventually(quiet, timeout=20, every=0.1)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    assert not await held()
    await db.close()
    alerts = [m for m in slack.messages(ALERTS) if "thread_ts" not in m]
    assert len(alerts) == 1 and "revoked" in str(alerts[0]["text"])
    assert pd.actions() == ["trigger"]
