"""The scheduler in real time: sweeps against the Visma/Brincr stand-in, alerts delivered
through the outbox to a fake Slack, Slack outages and restarts, and pacing."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from storage.models import CheckResult, Customer, Notification
from tests.harness import ALERTS, BotHarness, eventually, start_bot, text_of


async def wait_until(predicate: object, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def all_sent(bot: BotHarness) -> bool:
    """Every message of the outbox is sent (none pending, none failed): all there will be."""
    async with bot.runtime.bot.db.transaction() as session:
        query = select(func.count()).select_from(Notification).where(Notification.status != "sent")
        return await session.scalar(query) == 0


def alerts(slack: FakeSlack) -> list[dict[str, object]]:
    return [m for m in slack.messages(ALERTS) if "thread_ts" not in m]


async def test_every_customer_is_checked_once_per_interval(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, schedule=True, check_interval="1s")
    try:
        tenants = [f"00000000-0000-4000-8000-{i:012d}" for i in range(5)]
        for i, tenant in enumerate(tenants):
            await bot.add_customer(f"{30000000 + i}", f"Klant {i}", tenant_id=tenant)
        flaky = "00000000-0000-4000-8000-999999999999"
        sim.fault("production", "token", "server_error", tenant_id=flaky)
        await bot.add_customer("39999999", "Klant met storing", tenant_id=flaky)
        started = time.monotonic()

        async def three_checks_each() -> bool:  # ~0, 1, 2 s: however loaded the machine is
            return all(sim.counters.token_requests(tenant_id=t) >= 3 for t in tenants)

        await eventually(three_checks_each, timeout=30)
        most = (time.monotonic() - started) / 1.0 + 2  # one a second, and one in flight
        async with bot.runtime.bot.db.transaction() as session:
            rows = (
                await session.execute(select(CheckResult.customer_id, CheckResult.checked_at))
            ).all()
    finally:
        await bot.close()
    for tenant in tenants:
        # one check a second: one token request and one probe each, never doubled
        assert 3 <= sim.counters.token_requests(tenant_id=tenant) <= most
        assert sim.counters.api_requests(tenant_id=tenant) == sim.counters.token_requests(
            tenant_id=tenant
        )
    # Visma failing for one tenant: retried with backoff (never more often than the
    # interval), no probe without a token, no retry storm
    assert 1 <= sim.counters.token_requests(tenant_id=flaky) <= most
    assert sim.counters.api_requests(tenant_id=flaky) == 0
    by_customer: dict[int, list[float]] = {}
    for customer_id, at in rows:
        by_customer.setdefault(customer_id, []).append(at.timestamp())
    for times in by_customer.values():
        times.sort()
        # one check per interval; a check starts at its slot, never before (a little slack
        # for the clocks of the stand-in and the database)
        assert all(b - a >= 0.89 for a, b in itertools.pairwise(times)), times


async def test_a_revoked_scope_reaches_on_call_through_the_scheduler(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, schedule=True, check_interval="1s")
    try:
        tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
        await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        await wait_until(lambda: sim.counters.token_requests(tenant_id=tenant) >= 1)
        sim.revoke(tenant, ["brincr:category"])
        await wait_until(lambda: len(alerts(slack)) == 1)
        await asyncio.sleep(2.5)  # more sweeps: still one alert
        (alert,) = alerts(slack)
        assert "`brincr:category`" in text_of(alert)
    finally:
        await bot.close()


async def test_a_fleet_due_at_once_is_spread_over_the_interval(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, check_interval="15m")
    try:
        for i in range(200):
            await bot.add_customer(f"{40000000 + i}", f"Klant {i}")
        scheduler = bot.runtime.bot.scheduler
        assert scheduler.tick == 10.0
        # 200 customers x 10 s / 900 s x 1.5 = 4 per tick, at least 10: 20 ticks of 10 s,
        # a third of the interval, instead of 200 checks at once. The budget is the tick
        # window's, for every worker: a second sweep in the same window claims nothing.
        start = utcnow()
        assert await scheduler.sweep(start) == 10
        assert await scheduler.sweep(start) == 0
        later = [start + timedelta(seconds=10 * i) for i in range(1, 21)]
        assert [await scheduler.sweep(now) for now in later] == [10] * 19 + [0]
    finally:
        await bot.close()


@pytest.mark.expected_errors("scheduler stalled")  # the watch may say so before the test ends
async def test_readiness_turns_503_when_no_sweep_completed_for_three_intervals(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, schedule=True, check_interval="1s")
    try:
        await wait_until(lambda: bot.runtime.bot.scheduler.last_sweep is not None)
        assert (await bot.http.get(bot.url + "/readyz")).status_code == 200
        jobs = bot.runtime.bot.scheduler._scheduler
        assert jobs is not None
        jobs.pause()
        # a tick already under way (one every 0.2 s) finishes first: waited for, however slow
        executor = jobs._lookup_executor("default")
        await wait_until(lambda: not any(not f.done() for f in executor._pending_futures))
        bot.runtime.bot.scheduler.last_sweep = time.monotonic() - 3.5
        response = await bot.http.get(bot.url + "/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["scheduler"]["detail"] == "failing"
    finally:
        await bot.close()


async def test_a_slack_outage_delays_alerts_without_losing_or_doubling_them(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim)
    try:
        ids = []
        for i in range(3):
            tenant = f"00000000-0000-4000-8000-{i:012d}"
            ids.append(await bot.add_customer(f"{50000000 + i}", f"Klant {i}", tenant_id=tenant))
            sim.remove(tenant)
        slack.fail("chat.postMessage", status=500, times=4)
        slack.fail("chat.postMessage", status=429, times=2, retry_after=1)
        await bot.runtime.bot.checker.check_many(ids)
        await wait_until(lambda: len(alerts(slack)) == 3, timeout=20)
        await eventually(lambda: all_sent(bot), timeout=20, every=0.05)  # nothing more can come
        assert len(alerts(slack)) == 3
    finally:
        await bot.close()


async def test_an_alert_written_before_a_restart_is_posted_once_after_it(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    first = await start_bot(sqlite_url, slack, sim)
    cid = await first.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    sim.remove(tenant)
    slack.fail("chat.postMessage", status=503, times=1000)  # Slack down: nothing gets out
    await first.runtime.bot.checker.check_customer(cid)
    await first.close()  # the bot stops with the alert written but not posted
    assert alerts(slack) == []
    slack.clear_failures()
    second = await start_bot(sqlite_url, slack, sim)
    try:
        async with second.runtime.bot.db.transaction() as session:
            await session.execute(Notification.__table__.update().values(next_attempt_at=utcnow()))
        second.runtime.bot.outbox.wake()
        await wait_until(lambda: len(alerts(slack)) == 1)
        await eventually(lambda: all_sent(second), timeout=20, every=0.05)  # nothing more can come
        assert len(alerts(slack)) == 1
        async with second.runtime.bot.db.transaction() as session:
            customer = await session.scalar(select(Customer))
        assert customer is not None and customer.state == "revoked"
    finally:
        await second.close()


async def test_every_periodic_job_is_scheduled_on_every_replica(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, schedule=True)
    try:
        running = bot.runtime.bot.scheduler._scheduler  # APScheduler's own list: what runs
        assert running is not None
        assert {job.id for job in running.get_jobs()} == {
            "sweep", "retention", "upkeep", "alert-holds", "stale-invitations", "maintenance-ends",
            "digest", "rollout-tracker",
            "webhook-retry",
        }  # fmt: skip
    finally:
        await bot.close()
