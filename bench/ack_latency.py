"""Ack latency of ``/brincr status`` in HTTP mode, side by side with a bare Bolt app.

Four processes: the Visma/Brincr stand-in (10,000 approved tenants, 50 ms latency), the real
bot (``bot.runtime.Runtime``, HTTP mode, logging as ``serve`` configures it, SQLite with
10,000 customers and 30 days of history from ``bench/db_size.py``), a bare Bolt app whose
only listener acks ``/brincr`` (served through the same aiohttp adapter), and this one: the
load generator and the Slack Web API stand-in (``bot.demo.fake_slack.FakeSlack``, which
also receives the bot's ``response_url`` replies). Signed ``/brincr status <kvk>`` requests
go to both apps alternately, one at a time; the HTTP round trip of the ack is measured.
Phases: warm-up, idle, while the bot sweeps all customers (``check_many`` in a loop), and
while it sweeps and Slack answers 429 to ``response_url`` and ``chat.*``::

    .venv/bin/python bench/ack_latency.py --customers 10000 --days 30 --requests 500
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp, AsyncRespond
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bench import provenance
from bench.bench_simulator import free_port
from bench.db_size import SCOPES, seed_history
from bench.docblock import DOC, replace_block
from bench.sweep import SERVER as STAND_IN
from bot.demo.fake_slack import FakeSlack

SECRET = "bench-signing-secret-0123456789abcdef"
TOKEN = "xoxb-bench-0000"
TARGET_RATIO = 1.5
CHILD = "import sys; from bench.ack_latency import child; child(sys.argv[1], sys.argv[2])"


# --- the two apps, each in its own process -------------------------------------------------


def child(kind: str, config: str) -> None:
    """Entry point of the bot and bare-app processes: print ``PORT n``, obey stdin lines."""
    from bot.core.loop import run_event_loop  # the loop `serve` runs on (uvloop), for both

    values = json.loads(config)
    run_event_loop(_run_bot(values) if kind == "bot" else _run_bare(values))


async def _run_bot(values: dict[str, Any]) -> None:
    from bot.core.logs import configure_logging
    from bot.core.loop import abandon_stuck_tasks
    from bot.domain.roles import Role
    from bot.runtime import Runtime
    from bot.settings import load_settings

    configure_logging("text", logging.INFO)  # as `serve` does; stderr goes to a file
    role = Role(values.pop("role", "all"))
    check_engine = values.pop("check_engine", True)  # as serve runs --role all: the check engine
    runtime = Runtime(load_settings(**values), role=role, check_engine=check_engine)
    await runtime.start(schedule=False)
    print(f"PORT {runtime.port}", flush=True)
    sweeper: asyncio.Task[None] | None = None
    lags: list[float] = []
    sampler = asyncio.create_task(_lag(lags))
    while (line := await _stdin_line()) not in ("", "stop"):
        if line == "sweep" and sweeper is None:
            sweeper = asyncio.create_task(sweeping(runtime))
        elif line == "schedule":  # the real scheduler, as `serve` runs it
            await runtime.start_scheduler()
        elif line == "lag":
            worst = max(lags, default=0.0) * 1000
            print(f"LAG {pct(lags, 0.99) if lags else 0.0:.1f} {worst:.1f}", flush=True)
            lags.clear()
    sampler.cancel()
    if sweeper is not None:
        sweeper.cancel()
    await runtime.stop()
    await abandon_stuck_tasks()  # exit as `serve` does, even with a cancelled sweep stuck


def sweeping(runtime: Any) -> Coroutine[Any, Any, None]:
    """Sweep for ever where ``runtime`` sweeps: in a process beside it when it has a check
    engine (as ``serve`` does: the engine is a worker process), else on this loop."""
    if runtime.engine is not None:
        return _sweep_beside(runtime.settings)
    return _sweep_forever(runtime)


async def _sweep_beside(settings: Any) -> None:
    """Sweep for ever in a worker process of its own (a check engine's place), until
    cancelled; its ``SWEPT`` lines go to this process's stdout."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(
        target=_sweeper, args=(settings,), name="bench-sweeper", daemon=True
    )
    process.start()
    try:
        await asyncio.Event().wait()
    finally:
        process.kill()
        process.join()


def _sweeper(settings: Any) -> None:
    from bot.core.loop import run_event_loop
    from bot.domain.roles import Role
    from bot.runtime import Runtime

    async def main() -> None:
        runtime = Runtime(settings, worker_id="bench-sweeper", role=Role.WORKER)
        await runtime.start(listen=False, schedule=False)
        await _sweep_forever(runtime)

    run_event_loop(main())


async def _sweep_forever(runtime: Any) -> None:
    from sqlalchemy import select

    from storage.models import Customer

    async with runtime.bot.db.transaction() as session:
        ids = list(await session.scalars(select(Customer.id)))
    while True:
        started = time.perf_counter()
        outcomes = await runtime.bot.checker.check_many(ids)
        healthy = sum(1 for o in outcomes if o.healthy)
        print(f"SWEPT {len(ids)} {healthy} {time.perf_counter() - started:.1f}", flush=True)


async def _lag(lags: list[float]) -> None:
    """How late a 5 ms timer fires: the event loop's lag, sampled all along."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(max(0.0, time.perf_counter() - started - 0.005))


async def _run_bare(values: dict[str, Any]) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=values["slack_api_url"])
    app = AsyncApp(client=client, signing_secret=SECRET)

    @app.command("/brincr")
    async def brincr(ack: Any, respond: AsyncRespond) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    while await _stdin_line() not in ("", "stop"):
        pass
    await runner.cleanup()


async def _stdin_line() -> str:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return line.strip() if line else ""


# --- the load generator --------------------------------------------------------------------


@dataclass
class Target:
    name: str
    process: subprocess.Popen[str]
    url: str
    samples: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    expect: str = "*healthy*"  # in every reply (scheduled runs: customers are still pending)

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()


def spawn(kind: str, config: dict[str, Any], log: IO[str]) -> Target:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, json.dumps(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"the {kind} process did not start (see its log)")
    return Target(kind, process, f"http://127.0.0.1:{line.split()[1]}/slack/events")


def signed(text: str, response_url: str) -> tuple[str, dict[str, str]]:
    form = {
        "token": "legacy", "team_id": "T0FAKE", "team_domain": "fake", "channel_id": "C0SUPPORT",
        "channel_name": "support", "user_id": "U0SUPPORT", "user_name": "support",
        "command": "/brincr", "text": text, "api_app_id": "A0FAKE",
        "response_url": response_url, "trigger_id": f"{uuid.uuid4().int % 10**12}.1.abc",
    }  # fmt: skip
    body = urlencode(form)
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }
    return body, headers


async def one_request(
    http: aiohttp.ClientSession, slack: FakeSlack, target: Target, kvk: str, record: bool
) -> None:
    key = uuid.uuid4().hex[:12]
    body, headers = signed(f"status {kvk}", slack.response_url_base + key)
    started = time.perf_counter()
    async with http.post(target.url, data=body, headers=headers) as response:
        await response.read()
        acked = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{target.name} answered HTTP {response.status}")
    if record:
        target.samples.append(acked)
    if target.name == "bot":  # its answer goes to response_url: wait, so requests don't overlap
        replied = await _reply_time(slack, key, started, target.expect)
        if record and replied is not None:
            target.replies.append(replied)


async def _reply_time(slack: FakeSlack, key: str, started: float, expect: str) -> float | None:
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline:
        for call in reversed(slack.calls[-20:]):
            # Only a reply Slack accepted counts: a 429 answered reply is retried, not done.
            accepted = not call.failed and call.status == 200
            if call.method == "response_url" and call.params.get("_key") == key and accepted:
                if expect not in json.dumps(call.params):
                    raise RuntimeError(f"unexpected status reply: {json.dumps(call.params)[:300]}")
                return time.perf_counter() - started
        await asyncio.sleep(0.002)
    return None


async def phase(
    http: aiohttp.ClientSession, slack: FakeSlack, targets: list[Target], n: int, customers: int,
    *, record: bool = True, before_each: Callable[[], None] | None = None,
) -> None:  # fmt: skip
    for target in targets:
        target.samples.clear()
        target.replies.clear()
    for i in range(n):
        if before_each is not None:
            before_each()
        kvk = str(10_000_000 + 1 + (i * 7919) % customers)
        order = targets if i % 2 == 0 else targets[::-1]  # neither app always goes first
        for target in order:
            await one_request(http, slack, target, kvk, record)
        if len(slack.calls) > 1000:  # the fake keeps every call; searching it must stay cheap
            slack.calls.clear()


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def report(name: str, bot: Target, bare: Target) -> str:
    ratio = pct(bot.samples, 0.99) / pct(bare.samples, 0.99)
    reply = f" reply_p50={pct(bot.replies, 0.5):.1f}ms" if bot.replies else ""
    return (
        f"{name}: n={len(bot.samples)} bot_p50={pct(bot.samples, 0.5):.1f}ms "
        f"bot_p99={pct(bot.samples, 0.99):.1f}ms bot_max={max(bot.samples) * 1000:.1f}ms "
        f"bare_p50={pct(bare.samples, 0.5):.1f}ms bare_p99={pct(bare.samples, 0.99):.1f}ms "
        f"ratio_p99={ratio:.2f} mean_bot={statistics.mean(bot.samples) * 1000:.1f}ms{reply}"
    )


async def measure(args: argparse.Namespace, slack: FakeSlack, bot: Target, bare: Target) -> None:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await phase(http, slack, [bot, bare], args.warmup, args.customers, record=False)
        await phase(http, slack, [bot, bare], args.requests, args.customers)
        idle = report("idle", bot, bare)
        print(idle, flush=True)
        bot.send("sweep")
        await asyncio.sleep(2)  # let the sweep get going
        await phase(http, slack, [bot, bare], args.under_load, args.customers)
        print(report("sweep", bot, bare), flush=True)

        # Slack answers 429 to the first attempt of every reply: the bot's reply goes through
        # on its retry after Retry-After, and counts only then (a refused reply is not one).
        def refuse_next_reply() -> None:
            slack.fail("response_url", status=429, retry_after=1, times=1)

        await phase(http, slack, [bot, bare], args.under_load, args.customers,
                    before_each=refuse_next_reply)  # fmt: skip
        print(report("sweep+429", bot, bare), flush=True)
    ratio = float(idle.split("ratio_p99=")[1].split()[0])
    verdict = "met" if ratio <= TARGET_RATIO else f"missed by {ratio / TARGET_RATIO:.2f}x"
    print(f"ack_target ratio_p99={ratio:.2f} target<={TARGET_RATIO} {verdict}")


def bot_config(db_url: str, slack: FakeSlack, stand_in: str, concurrency: int) -> dict[str, Any]:
    return {
        "database_url": db_url, "slack_bot_token": TOKEN, "slack_signing_secret": SECRET,
        "slack_api_url": slack.api_url, "alert_channel": "C0ALERTS", "bot_admins": "U0ADMIN",
        "brincr_scopes": " ".join(SCOPES), "host": "127.0.0.1", "port": 0,
        "production_client_id": "sim-production-client",
        "production_client_secret": "sim-production-secret",
        "production_token_url": f"{stand_in}/production/connect/token",
        "production_api_url": f"{stand_in}/production/api/v1/",
        "check_concurrency": concurrency,
    }  # fmt: skip


async def run(args: argparse.Namespace, db_url: str, stand_in: str, log: IO[str]) -> None:
    targets: list[Target] = []
    async with FakeSlack() as slack:
        try:
            config = bot_config(db_url, slack, stand_in, args.concurrency)
            targets.append(await asyncio.to_thread(spawn, "bot", config, log))
            bare = {"slack_api_url": slack.api_url}
            targets.append(await asyncio.to_thread(spawn, "bare", bare, log))
            await measure(args, slack, targets[0], targets[1])
        finally:
            for target in targets:
                target.send("stop")
            for target in targets:
                await asyncio.to_thread(target.process.wait, 60)
    stdout = targets[0].process.stdout
    assert stdout is not None
    sweeps = [line.split() for line in stdout if line.startswith("SWEPT")]
    if not sweeps:
        print("sweeps completed while measuring: none (the first was still running at the end)")
        return
    healthy = sum(int(s[2]) for s in sweeps) / sum(int(s[1]) for s in sweeps)
    mean = statistics.mean(float(s[3]) for s in sweeps)
    print(f"sweeps completed while measuring: {len(sweeps)} of {sweeps[0][1]} customers, "
          f"{mean:.1f}s each on average, {healthy:.0%} of checks healthy")  # fmt: skip


# --- with the real scheduler: a bulk import all due at once, web/worker or one process --------


def _all_due(db_url: str, customers: int) -> None:
    """A bulk import: ``customers`` pending customers, every one due now, nothing checked."""
    from sqlalchemy import create_engine, delete, text

    from bench.db_size import Timeline, seed_customers
    from storage.db import sync_url
    from storage.migrate import upgrade
    from storage.models import CheckResult, Customer

    upgrade(db_url)
    engine = create_engine(sync_url(db_url))
    with engine.begin() as conn:
        conn.execute(delete(CheckResult))
        conn.execute(text("DELETE FROM state_changes"))
        conn.execute(delete(Customer))
        seed_customers(conn, customers, Timeline(datetime.now(UTC), 1))
    engine.dispose()


def _checks_since(db_url: str, since: datetime) -> int:
    from sqlalchemy import create_engine, func, select

    from storage.db import sync_url
    from storage.models import CheckResult

    engine = create_engine(sync_url(db_url))
    with engine.connect() as conn:
        count = conn.scalar(
            select(func.count()).select_from(CheckResult).where(CheckResult.checked_at >= since)
        )
    engine.dispose()
    return int(count or 0)


def _lag_of(target: Target) -> str:
    assert target.process.stdout is not None
    target.send("lag")
    while not (line := target.process.stdout.readline()).startswith("LAG"):
        if not line:
            return "lag unknown"
    _, p99, worst = line.split()
    return f"lag_p99={p99}ms lag_max={worst}ms"


LAYOUTS = {"all": "all", "loop": "all, one loop", "split": "web + worker"}
BEGIN = "<!-- ack_scheduled:begin (generated by bench/ack_latency.py --scheduled --write) -->"
END = "<!-- ack_scheduled:end -->"
# The targets (#21): p99 ack ÷ bare during a catch-up at CHECK_INTERVAL=60s, and
# when checks saturate the machine (every customer every 15 s); idle as in (b).
TARGETS = {"idle": 1.5, "60s": 1.5, "15s": 2.0}


@dataclass
class Row:
    run: int
    interval: str
    mode: str
    phase: str
    load: str
    bot: list[float]
    bare: list[float]
    lag: str = ""
    checks: str = ""

    @property
    def ratio(self) -> float:
        return pct(self.bot, 0.99) / pct(self.bare, 0.99)

    @property
    def target(self) -> float:
        return TARGETS["idle" if self.phase == "idle" else self.interval]

    def line(self) -> str:
        ok = "met" if self.ratio <= self.target else "missed"
        return (
            f"| {self.run} | {self.interval} | {self.mode} | {self.phase} | {self.load} | "
            f"{len(self.bot)} | "
            f"{pct(self.bot, 0.5):.1f}ms | {pct(self.bot, 0.99):.1f}ms | "
            f"{max(self.bot) * 1000:.0f}ms | {pct(self.bare, 0.5):.1f}ms | "
            f"{pct(self.bare, 0.99):.1f}ms | {self.ratio:.2f} | ≤ {self.target} | {ok} | "
            f"{self.lag} | {self.checks} |"
        )


async def scheduled(
    args: argparse.Namespace, db_url: str, stand_in: str, interval: str, mode: str,
    log: IO[str], run: int,
) -> list[Row]:  # fmt: skip
    """One run: fresh processes, every customer due at once, the scheduler started (on the
    worker in the ``web + worker`` layout), then signed requests to the answering process
    and the bare app alternately while the checks run."""
    await asyncio.to_thread(_all_due, db_url, args.customers)
    split = mode == LAYOUTS["split"]
    load = provenance.load_before().split()[0]
    rows: list[Row] = []
    async with FakeSlack() as slack:
        started: list[Target] = []
        try:
            config = {**bot_config(db_url, slack, stand_in, args.concurrency),
                      "check_interval": interval}  # fmt: skip
            role: dict[str, Any] = {"role": "web" if split else "all"}
            role["check_engine"] = mode == LAYOUTS["all"]
            answering = await asyncio.to_thread(spawn, "bot", {**config, **role}, log)
            answering.expect = "(KvK "
            started.append(answering)
            checking = answering
            if split:
                checking = await asyncio.to_thread(spawn, "bot", {**config, "role": "worker"}, log)
                checking.name = "worker"
                started.append(checking)
            bare = await asyncio.to_thread(spawn, "bare", {"slack_api_url": slack.api_url}, log)
            started.append(bare)
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                targets = [answering, bare]
                await phase(http, slack, targets, args.warmup, args.customers, record=False)
                await phase(http, slack, targets, args.requests, args.customers)
                print(f"scheduled {interval} {mode} " + report("idle", answering, bare), flush=True)
                rows.append(Row(run, interval, mode, "idle", load, list(answering.samples),
                                list(bare.samples)))  # fmt: skip
                await asyncio.to_thread(_lag_of, answering)  # the idle phase's samples: cleared
                since = datetime.now(UTC)
                began = time.perf_counter()
                checking.send("schedule")
                await asyncio.sleep(args.settle)
                await phase(http, slack, targets, args.under_load, args.customers)
                took = time.perf_counter() - began
            lag = await asyncio.to_thread(_lag_of, answering)
            checks = await asyncio.to_thread(_checks_since, db_url, since)
            print(
                f"scheduled {interval} {mode} " + report("checks", answering, bare)
                + f" {lag} checks={checks} in {took:.0f}s ({checks / took:.0f}/s)",
                flush=True,
            )  # fmt: skip
            rows.append(Row(
                run, interval, mode, "checks", load, list(answering.samples), list(bare.samples),
                lag.replace("lag_p99=", "").replace(" lag_max=", " / "),
                f"{checks:,} in {took:.0f}s ({checks / took:.0f}/s)",
            ))  # fmt: skip
        finally:
            for target in started:
                target.send("stop")
            for target in started:
                await asyncio.to_thread(target.process.wait, 60)
    return rows


def main_scheduled(args: argparse.Namespace) -> None:
    where = provenance.announce(provenance.SEPARATE, "each bot role and the bare app a process")
    print(f"stand-in: a separate process, {args.customers} tenants, {args.latency * 1000:.0f} ms "
          f"latency; {args.requests} idle and {args.under_load} loaded requests per app; "
          f"database {args.database_url.split('@')[-1]}", flush=True)  # fmt: skip
    port = free_port()
    stand_in = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, str(port), str(args.latency), str(args.customers)]
    )
    rows: list[Row] = []
    try:
        with open(args.log or os.devnull, "w") as log:
            for run in range(1, args.repeat + 1):
                for interval in args.scheduled.split(","):
                    for layout in args.layouts.split(","):
                        rows += asyncio.run(scheduled(args, args.database_url,
                                                      f"http://127.0.0.1:{port}", interval,
                                                      LAYOUTS[layout], log, run))  # fmt: skip
    finally:
        stand_in.terminate()
        stand_in.wait()
    if args.write:
        write_doc(args, where, rows)


def _medians(rows: list[Row]) -> list[str]:
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.interval, row.mode, row.phase), []).append(row)
    lines = []
    for (interval, mode, name), group in sorted(groups.items()):
        ratio = statistics.median(r.ratio for r in group)
        target = group[0].target
        ok = "met" if ratio <= target else "missed"
        lines.append(f"| {interval} | {mode} | {name} | {ratio:.2f} | ≤ {target} | {ok} |")
    return lines


def write_doc(args: argparse.Namespace, where: provenance.Where, rows: list[Row]) -> None:
    lines = [
        "## Acks while the scheduler checks a bulk import (`bench/ack_latency.py --scheduled`): "
        "target bot p99 ≤ 1.5 × a bare Bolt app's during a catch-up at `CHECK_INTERVAL=60s`, "
        "≤ 2.0 × when every customer is due every 15 s",
        "",
        f"{where.sentence()} The load average before each run is in the table. The "
        f"Visma/Brincr stand-in runs in a **separate process** ({args.customers:,} tenants, "
        f"{args.latency * 1000:.0f} ms latency), PostgreSQL on the same machine, "
        f"`CHECK_CONCURRENCY={args.concurrency}`. {args.customers:,} customers imported at "
        "once (all due), then the real scheduler (`serve`'s) starts; meanwhile signed "
        "`/brincr status` requests go alternately to the answering process and to a bare Bolt "
        f"app, {args.requests} each idle and {args.under_load} each while checks run. "
        "*all*: `serve --role all` as it runs, the listener answering and its check engine "
        "process checking (`bot.runtime.CheckEngine`); *all, one loop*: one process with the "
        "checks on the listener's event loop (`serve --role all` before the check engine); "
        "*web + worker*: `--role web` answers, `--role worker` checks, two replicas. "
        "Loop lag: how late a 5 ms timer fires in the answering process (p99 / max).",
        "",
        "| run | interval | roles | phase | load avg | n | bot p50 | bot p99 | bot max | "
        "bare p50 | bare p99 | p99 ratio | target | verdict | loop lag | checks done |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(row.line() for row in sorted(rows, key=lambda r: (r.interval, r.mode, r.phase, r.run))),
        "",
        "Median p99 ratio over the runs, against its target:",
        "",
        "| interval | roles | phase | median p99 ratio | target | verdict |",
        "|---|---|---|---|---|---|",
        *_medians(rows),
    ]
    replace_block(BEGIN, END, "\n".join(lines))
    print(f"wrote {DOC}")


def main(args: argparse.Namespace) -> None:
    provenance.announce(provenance.SEPARATE, "the bot and the bare app each a process")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or f"{tmp}/ack.db"
        url = f"sqlite:///{path}"
        if not args.db or not Path(path).exists():
            started = time.perf_counter()
            seed_history(url, args.customers, args.days, real_customers=0)
            print(f"seeded {args.customers} customers, {args.days} days of history in "
                  f"{time.perf_counter() - started:.0f}s")  # fmt: skip
        size = Path(path).stat().st_size / 1_000_000
        print(f"database {size:.0f}MB; requests {args.requests} per app idle, "
              f"{args.under_load} under load, after {args.warmup} warm-up")  # fmt: skip
        port = free_port()
        stand_in = subprocess.Popen(
            [sys.executable, "-c", STAND_IN, str(port), str(args.latency), str(args.customers)]
        )
        try:
            with open(args.log or f"{tmp}/processes.log", "w") as log:
                asyncio.run(run(args, url, f"http://127.0.0.1:{port}", log))
        finally:
            stand_in.terminate()
            stand_in.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--under-load", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--db", help="an SQLite file seeded earlier (seeded here when missing)")
    parser.add_argument("--log", help="write the bot's and the bare app's logs here")
    parser.add_argument(
        "--scheduled", metavar="INTERVALS",
        help="comma-separated CHECK_INTERVALs (60s,15s): run the real scheduler after a bulk "
        "import of --customers all due at once, on --database-url, instead of the sweep phases",
    )  # fmt: skip
    parser.add_argument("--database-url", default="", help="with --scheduled (PostgreSQL)")
    parser.add_argument(
        "--layouts", default="all,loop,split",
        help="with --scheduled, comma-separated: all (--role all as serve runs it, checks in "
        "the check engine's process), loop (one process, checks on the listener's "
        "loop), split (one --role web and one --role worker process)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=1, help="with --scheduled: runs of each")
    parser.add_argument(
        "--write", action="store_true",
        help="with --scheduled: write the table into docs/benchmarks.md",
    )  # fmt: skip
    parser.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="with --scheduled: seconds between starting checks and measuring",
    )
    parsed = parser.parse_args()
    if parsed.scheduled:
        if not parsed.database_url:
            parser.error("--scheduled needs --database-url")
        main_scheduled(parsed)
    else:
        main(parsed)
