"""Request budget: what the scheduled checks cost Visma Connect and Brincr per customer.

The real ``Runtime`` with its scheduler (``start(schedule=True)``) runs against the stand-in
(in this process, so its per-tenant counters can be read) with K healthy customers and a
short ``CHECK_INTERVAL``. After one warm-up round the counters are zeroed and the bot runs
for M intervals; then every tenant's token and API requests are counted, and the checks the
bot recorded in that window are read back (their ``checked_at`` give the real period)::

    .venv/bin/python bench/request_budget.py --customers 50 --interval 2 --intervals 10

Target (issue #5): requests per healthy customer per day = (86400 ÷ interval) × 2, i.e.
one token request and one probe per check and one check per interval.

``--rollout`` (issue #17): ``brincr:order`` becomes a rollout scope (``BRINCR_ROLLOUT_SCOPES``);
half the customers have switched it ON, half have not. The hourly ask of a customer known to
lack it is scaled like the interval (``ROLLOUT_ASK_EVERY`` = 4 intervals, as 1 h is 4 × 15 m),
so the window shows it. Target: switched ON = 2 per interval, as without a rollout; not
switched ON = 2 per interval + 1 token request per ``ROLLOUT_ASK_EVERY``::

    .venv/bin/python bench/request_budget.py --customers 50 --interval 2 --intervals 12 --rollout
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select

from bench import provenance
from bot.checks import service
from bot.checks.scheduler import tick_seconds
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.runtime import Runtime
from bot.settings import load_settings
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.migrate import upgrade
from storage.models import CheckResult, Customer

SCOPES = ("brincr:country", "brincr:category", "brincr:order")
TOKEN = "xoxb-bench-0000"
PRODUCTION_INTERVAL = 900.0
Checks = dict[int, list[datetime]]
Counts = tuple[dict[int, int], dict[int, int]]  # token requests, probes; per customer id


ROLLOUT_ASKS_PER_INTERVAL = 0.25  # production: once an hour at a 15-minute interval


def build(db_url: str, sim: Simulator, slack: FakeSlack, interval: float, rollout: bool) -> Runtime:
    values = {k.lower(): v for k, v in sim.settings_env().items()}
    scopes = {"brincr_scopes": " ".join(SCOPES[:2]), "brincr_rollout_scopes": SCOPES[2]}
    settings = load_settings(
        **values, database_url=db_url, slack_bot_token=TOKEN, slack_signing_secret="s" * 32,
        slack_api_url=slack.api_url, alert_channel="C0ALERTS",
        **(scopes if rollout else {"brincr_scopes": " ".join(SCOPES)}),
        check_interval=f"{interval:g}s", host="127.0.0.1", port=0,
    )  # fmt: skip
    return Runtime(settings)


def lacks_rollout(n: int, rollout: bool) -> bool:
    return rollout and n % 2 == 1


async def seed(runtime: Runtime, sim: Simulator, count: int, rollout: bool) -> dict[int, str]:
    tenants: dict[int, str] = {}
    async with runtime.bot.db.transaction() as session:
        for n in range(count):
            tenant = str(uuid.uuid4())
            sim.approve(
                tenant, "production", list(SCOPES[:2] if lacks_rollout(n, rollout) else SCOPES)
            )
            new = NewCustomer(f"{20_000_000 + n}", f"Klant {n}", Environment.PRODUCTION, tenant)
            customer = await add_customer(new, session=session, state=State.PENDING)
            tenants[customer.id] = tenant
    return tenants


async def wait_all_checked(runtime: Runtime, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with runtime.bot.db.transaction() as session:
            states = list(await session.scalars(select(Customer.state)))
        if all(s == State.HEALTHY for s in states):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("not every customer was checked healthy in time")


async def checks_between(db_url: str, since: datetime, until: datetime) -> Checks:
    """Every recorded check with ``since <= checked_at < until``, per customer, in order."""
    found: Checks = defaultdict(list)
    db = Database(db_url)
    async with db.transaction() as session:
        rows = await session.execute(
            select(CheckResult.customer_id, CheckResult.checked_at, CheckResult.state)
            .where(CheckResult.checked_at >= since, CheckResult.checked_at < until)
            .order_by(CheckResult.checked_at)
        )
        for customer_id, checked_at, state in rows:
            assert state == State.HEALTHY, f"customer {customer_id} was {state}"
            found[customer_id].append(checked_at)
    await db.close()
    return found


def periods(checks: Checks) -> list[float]:
    return [
        (b - a).total_seconds() for times in checks.values() for a, b in itertools.pairwise(times)
    ]


def summarise(counts: Counts, checks: Checks, args: argparse.Namespace) -> None:
    tokens, probes = counts
    tenants = tokens.keys()
    recorded = sum(len(v) for v in checks.values())
    total = sum(tokens.values()) + sum(probes.values())
    m = args.intervals
    low, high = 2 * (m - 1), 2 * (m + 1)  # the first and last interval may be partial
    outside = [cid for cid in tenants if not low <= tokens[cid] + probes[cid] <= high]
    unpaired = [cid for cid in tenants if abs(tokens[cid] - probes[cid]) > 1]
    mean_period = statistics.mean(periods(checks))
    lag = mean_period - args.interval
    tick = tick_seconds_for(args.interval)
    per_check = total / recorded
    print(f"customers={args.customers} interval={args.interval:g}s intervals={m} "
          f"window={args.interval * m:g}s scheduler_tick={tick:g}s")  # fmt: skip
    print(f"token requests per tenant min={min(tokens.values())} max={max(tokens.values())}; "
          f"probes min={min(probes.values())} max={max(probes.values())}; "
          f"checks recorded {recorded}")  # fmt: skip
    print(f"requests_per_check={per_check:.3f} (target 2: one token + one probe)")
    print(f"requests_per_customer_per_interval={total / len(tenants) / m:.3f} "
          f"mean_period={mean_period:.3f}s lag={lag * 1000:.0f}ms "
          f"lag_ticks={lag / tick:.2f}")  # fmt: skip
    print(f"tenants with requests outside 2×(M±1): outside={len(outside)}; "
          f"token and probe counts differing by more than 1: unpaired={len(unpaired)}")  # fmt: skip
    ideal = 86400 / PRODUCTION_INTERVAL * 2
    lag_15m = (lag / tick) * tick_seconds_for(PRODUCTION_INTERVAL)
    implied = 86400 / (PRODUCTION_INTERVAL + lag_15m) * per_check
    print(f"per_day_at_15m ideal={ideal:.0f} implied={implied:.1f} "
          f"(lag scaled to the 10s production tick: {lag_15m:.1f}s)")  # fmt: skip


def summarise_rollout(counts: Counts, lacking: set[int], args: argparse.Namespace) -> None:
    """Requests per customer per interval for each kind of customer in a rollout."""
    tokens, probes = counts
    m = args.intervals
    for name, ids in (("switched_on", set(tokens) - lacking), ("not_switched_on", lacking)):
        token_rate = sum(tokens[c] for c in ids) / len(ids) / m
        probe_rate = sum(probes[c] for c in ids) / len(ids) / m
        extra = ROLLOUT_ASKS_PER_INTERVAL if name == "not_switched_on" else 0.0
        print(f"rollout {name}: customers={len(ids)} token_requests_per_interval="
              f"{token_rate:.3f} probes_per_interval={probe_rate:.3f} "
              f"(target {1 + extra:.2f} and 1.00)")  # fmt: skip
        per_day = 86400 / PRODUCTION_INTERVAL
        print(f"rollout {name}: per_day_at_15m formula={per_day * (2 + extra):.0f} "
              f"measured_rate={per_day * (token_rate + probe_rate):.1f}")  # fmt: skip


def tick_seconds_for(interval: float) -> float:
    return tick_seconds(timedelta(seconds=interval))


async def run(args: argparse.Namespace, db_url: str) -> None:
    async with Simulator(latency=args.latency) as sim, FakeSlack() as slack:
        if args.rollout:  # the hourly ask, scaled like the interval (1 h = 4 × 15 m)
            service.ROLLOUT_ASK_EVERY = timedelta(seconds=args.interval / ROLLOUT_ASKS_PER_INTERVAL)
        sim.set_options(name_scope_in_error=False)  # Visma usually names no scope
        runtime = build(db_url, sim, slack, args.interval, args.rollout)
        tenants = await seed(runtime, sim, args.customers, args.rollout)
        lacking = {cid for n, cid in enumerate(tenants) if lacks_rollout(n, args.rollout)}
        await runtime.start(schedule=True)
        try:
            await wait_all_checked(runtime, timeout=args.interval * 5 + 10)
            await asyncio.sleep(args.interval)  # past the first round's stagger
            sim.counters.reset()
            since = utcnow()
            await asyncio.sleep(args.interval * args.intervals)
            until = utcnow()
            counts = (
                {cid: sim.counters.token_requests(tenant_id=t) for cid, t in tenants.items()},
                {cid: sim.counters.api_requests(tenant_id=t) for cid, t in tenants.items()},
            )
        finally:
            await runtime.stop()
    if args.rollout:
        summarise_rollout(counts, lacking, args)
        tokens, probes = counts
        counts = ({c: tokens[c] for c in tokens if c not in lacking},
                  {c: probes[c] for c in probes if c not in lacking})  # fmt: skip
    checks = await checks_between(db_url, since, until)
    summarise(counts, {c: t for c, t in checks.items() if c not in lacking}, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--interval", type=float, default=2.0, help="CHECK_INTERVAL, seconds")
    parser.add_argument("--intervals", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rollout", action="store_true", help="half the customers lack a "
                        "rollout scope (BRINCR_ROLLOUT_SCOPES)")  # fmt: skip
    args = parser.parse_args()
    provenance.announce(provenance.IN_PROCESS, "so are the bot and its scheduler (one event "
                        "loop), to read the stand-in's per-tenant counters")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/budget.db"
        upgrade(url)
        asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
