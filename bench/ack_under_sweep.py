"""``/brincr status`` ack latency while the bot runs a catch-up sweep of N customers, side by
side with a bare Bolt app measured alternately in the same run (issue #11: target p99 ≤ 2×).

Processes: the Visma/Brincr stand-in (``bot.simulator``, N approved tenants, 50 ms latency), the
real bot (``bot.runtime.Runtime`` built by ``bot.composition.build_bot``, HTTP mode, SQLite
with N customers and a day of history), a bare Bolt app that only acks ``/brincr`` behind
the same aiohttp adapter (``bench/ack_latency.py``), and this one: the load generator and the
fake Slack Web API. The catch-up sweep is what a first start or a restart after downtime
does when every customer is due: ``check_many`` over all N, recorded in batches, repeated
until the measurement ends. The bot also samples its own event-loop lag (a 5 ms timer's
overshoot) and prints the worst it saw::

    .venv/bin/python bench/ack_under_sweep.py --customers 3000 --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench import provenance
from bench.ack_latency import (
    Target,
    _run_bare,
    _stdin_line,
    bot_config,
    pct,
    phase,
    report,
    sweeping,
)
from bench.bench_simulator import free_port
from bench.db_size import seed_history
from bench.sweep import SERVER as STAND_IN
from bot.demo.fake_slack import FakeSlack

TARGET_RATIO = 2.0
CHILD = "import sys; from bench.ack_under_sweep import child; child(sys.argv[1], sys.argv[2])"


def child(kind: str, config: str) -> None:
    from bot.core.loop import run_event_loop  # the loop `serve` runs on (uvloop), for both

    values = json.loads(config)
    run_event_loop(_run_bot(values) if kind == "bot" else _run_bare(values))


async def _run_bot(values: dict[str, Any]) -> None:
    from bot.core.logs import configure_logging
    from bot.core.loop import abandon_stuck_tasks
    from bot.runtime import Runtime
    from bot.settings import load_settings

    configure_logging("text", logging.INFO)  # as `serve` does; stderr goes to a file
    runtime = Runtime(load_settings(**values), check_engine=True)  # as serve runs it
    await runtime.start(schedule=False)
    print(f"PORT {runtime.port}", flush=True)
    lags: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    pauses = _gc_pauses()
    while (line := await _stdin_line()) not in ("", "stop"):
        if line == "sweep" and not tasks:
            tasks = [asyncio.create_task(sweeping(runtime)), asyncio.create_task(_lag(lags))]
    for task in tasks:
        task.cancel()
    if lags:
        print(f"LAG {pct(lags, 0.99):.1f} {max(lags) * 1000:.1f}", flush=True)
    worst = max(pauses.values(), default=0.0)
    print(f"GC {worst * 1000:.1f} {' '.join(f'{g}:{p * 1000:.0f}' for g, p in pauses.items())}",
          flush=True)  # fmt: skip
    await runtime.stop()
    await abandon_stuck_tasks()  # exit as `serve` does, even with a cancelled sweep stuck


def _gc_pauses() -> dict[int, float]:
    """The longest garbage collection per generation (a pause of the whole loop)."""
    worst: dict[int, float] = {}
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            took = time.perf_counter() - started[0]
            worst[info["generation"]] = max(worst.get(info["generation"], 0.0), took)

    gc.callbacks.append(callback)
    return worst


async def _lag(lags: list[float]) -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append(max(0.0, time.perf_counter() - started - 0.005))


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


async def measure(args: argparse.Namespace, slack: FakeSlack, bot: Target, bare: Target) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        targets = [bot, bare]
        await phase(http, slack, targets, args.warmup, args.customers, record=False)
        await phase(http, slack, targets, args.requests, args.customers)
        print(report("idle", bot, bare), flush=True)
        bot.send("sweep")
        await asyncio.sleep(1)  # let the sweep get going
        await phase(http, slack, targets, args.requests, args.customers)
        print(report("catchup", bot, bare), flush=True)
    ratio = pct(bot.samples, 0.99) / pct(bare.samples, 0.99)
    verdict = "met" if ratio <= TARGET_RATIO else f"missed by {ratio / TARGET_RATIO:.2f}x"
    print(f"ack_under_sweep ratio_p99={ratio:.2f} target<={TARGET_RATIO} {verdict}", flush=True)


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
    _summary(targets[0])


def _summary(bot: Target) -> None:
    assert bot.process.stdout is not None
    lines = list(bot.process.stdout)
    sweeps = [line.split() for line in lines if line.startswith("SWEPT")]
    lag = [line.split() for line in lines if line.startswith("LAG")]
    for line in lines:
        if line.startswith("GC "):
            print(f"bot's longest garbage collection: {line.split()[1]}ms (by generation: "
                  f"{' '.join(line.split()[2:])} ms)")  # fmt: skip
    if sweeps:
        mean = sum(float(s[3]) for s in sweeps) / len(sweeps)
        healthy = sum(int(s[2]) for s in sweeps) / sum(int(s[1]) for s in sweeps)
        print(f"sweeps completed: {len(sweeps)} of {sweeps[0][1]} customers, {mean:.1f}s each, "
              f"{healthy:.0%} healthy")  # fmt: skip
    if lag:
        print(f"bot event-loop lag during the sweep: p99={lag[0][1]}ms max={lag[0][2]}ms")


def main(args: argparse.Namespace) -> None:
    provenance.announce(provenance.SEPARATE, "the bot and the bare app each a process")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ack.db"
        started = time.perf_counter()
        seed_history(url, args.customers, args.days, real_customers=0)
        took = time.perf_counter() - started
        print(f"seeded {args.customers} customers, {args.days} day(s) of history in {took:.0f}s; "
              f"{args.requests} requests per app and phase")  # fmt: skip
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
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--log", help="write the bot's and the bare app's logs here")
    main(parser.parse_args())
