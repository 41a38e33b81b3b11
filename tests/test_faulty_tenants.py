"""The whole bot with its scheduler at a 4 s interval, healthy customers beside tenants whose
upstream misbehaves in odd but real ways: the healthy ones are checked every interval, the
odd ones get a clear non-healthy state with the reason, memory stays bounded and the
replica stays ready."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.demo.fake_slack import FakeSlack
from bot.domain import State
from bot.simulator import Simulator
from storage.models import CheckResult, Customer
from tests.harness import BotHarness, start_bot

HEALTHY = [f"00000000-0000-4000-8000-{i:012d}" for i in range(3)]
TRICKLE = "10000000-0000-4000-8000-000000000001"
RETRY_INF = "10000000-0000-4000-8000-000000000002"
RETRY_HUGE = "10000000-0000-4000-8000-000000000003"
SOON = "10000000-0000-4000-8000-000000000004"
LONG_CODE = "10000000-0000-4000-8000-000000000005"
HUGE_BODY = "10000000-0000-4000-8000-000000000006"
INTERVAL = 4.0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _break(sim: Simulator) -> None:
    def answer(tenant: str, status: int, body: object, **headers: str) -> None:
        sim.fault(
            "production", "token", "answer", tenant_id=tenant, status=status, body=body,
            headers=headers or None,
        )  # fmt: skip

    sim.fault("production", "token", "trickle", tenant_id=TRICKLE)
    answer(RETRY_INF, 429, {"error": "slow_down"}, **{"Retry-After": "inf"})
    answer(RETRY_HUGE, 503, {"error": "temporarily_unavailable"}, **{"Retry-After": "1e9"})
    answer(SOON, 200, {"access_token": "opaque-token", "expires_in": "soon"})
    answer(LONG_CODE, 400, {"error": "x" * 150, "error_description": "what is this"})
    sim.fault("production", "token", "huge_body", tenant_id=HUGE_BODY)


async def _add_all(bot: BotHarness) -> dict[str, int]:
    ids = {}
    tenants = [*HEALTHY, TRICKLE, RETRY_INF, RETRY_HUGE, SOON, LONG_CODE, HUGE_BODY]
    for i, tenant in enumerate(tenants):
        ids[tenant] = await bot.add_customer(f"{40000000 + i}", f"Klant {i}", tenant_id=tenant)
    return ids


async def _checks(bot: BotHarness) -> dict[int, list[float]]:
    """Each customer's check start times (``checked_at``), oldest first."""
    times: dict[int, list[float]] = {}
    async with bot.runtime.bot.db.transaction() as session:
        rows = await session.execute(select(CheckResult.customer_id, CheckResult.checked_at))
        for customer_id, at in rows:
            times.setdefault(customer_id, []).append(at.timestamp())
    return {customer_id: sorted(at) for customer_id, at in times.items()}


async def _watch_until_checked_twice(
    bot: BotHarness, ids: dict[str, int], seconds: float
) -> tuple[list[int], float]:
    """Ask ``/readyz`` and note the peak RSS until every customer's second check is on record
    (or ``seconds`` passed: the assertions then say who was not checked again)."""
    statuses, peak = [], 0.0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        statuses.append((await bot.http.get(bot.url + "/readyz")).status_code)
        peak = max(peak, _rss_mb())
        times = await _checks(bot)
        if all(len(times.get(customer_id, [])) >= 2 for customer_id in ids.values()):
            break
        await asyncio.sleep(0.25)
    return statuses, peak


async def test_odd_tenants_never_stop_the_healthy_ones_being_checked_every_interval(
    database_url: str, slack: FakeSlack, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    baseline = _rss_mb()  # what the test session already holds is not this test's doing
    bot = await start_bot(
        database_url, slack, sim, schedule=True, check_interval=f"{INTERVAL:g}s",
        check_timeout="1s", failure_threshold=1,
    )  # fmt: skip
    try:
        _break(sim)
        added = time.time()
        ids = await _add_all(bot)
        statuses, peak_rss = await _watch_until_checked_twice(bot, ids, 4 * INTERVAL)
        times = await _checks(bot)
        async with bot.runtime.bot.db.transaction() as session:
            customers = {c.id: c for c in await session.scalars(select(Customer))}
    finally:
        await bot.close()
    # Every customer, healthy or odd, started its first check at once (all due when added)
    # and the next within the interval: an odd tenant (one that trickles for the whole
    # CHECK_TIMEOUT, or answers Retry-After: inf) never pushes anyone's check later.
    for tenant, customer_id in ids.items():
        checked = times.get(customer_id, [])
        assert len(checked) >= 2, (tenant, checked)
        assert checked[0] - added <= INTERVAL, (tenant, checked[0] - added)
        gaps = [b - a for a, b in itertools.pairwise(checked)]
        assert all(gap <= INTERVAL + 0.6 for gap in gaps), (tenant, gaps)
    for tenant in HEALTHY:
        assert customers[ids[tenant]].state == State.HEALTHY
    expected = {
        TRICKLE: (State.UNKNOWN, "timeout"),
        RETRY_INF: (State.UNKNOWN, "slow_down"),
        RETRY_HUGE: (State.UNKNOWN, "temporarily_unavailable"),
        SOON: (State.REVOKED, "unauthorized"),
        LONG_CODE: (State.FAILING, "x" * 100),
        HUGE_BODY: (State.UNKNOWN, "http_500"),
    }
    for tenant, (state, reason) in expected.items():
        customer = customers[ids[tenant]]
        assert (customer.state, tenant) == (state, tenant)
        assert reason in (customer.state_reason or ""), (tenant, customer.state_reason)
    assert set(statuses) == {200}
    # Bounded: no 64 MiB answer body is ever held whole (measured: +5 MB over the baseline
    # alone; an absolute limit failed in a full run whose earlier tests already held 405 MB).
    assert peak_rss - baseline < 48, (baseline, peak_rss)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_a_sweep_records_or_releases_every_customer_it_claimed(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, check_timeout="1s")
    try:
        _break(sim)
        ids = await _add_all(bot)
        checked = await bot.runtime.bot.scheduler.sweep()
        async with bot.runtime.bot.db.transaction() as session:
            customers = list(await session.scalars(select(Customer)))
    finally:
        await bot.close()
    assert checked == len(ids)
    assert all(c.claimed_by is None and c.claimed_until is None for c in customers)
    assert all(c.last_check_at is not None and c.last_result_id is not None for c in customers)
