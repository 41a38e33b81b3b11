"""Is the load on Visma Connect flat? Token requests per 5 s after a bulk import, a restart, an
outage, and in steady state (issue #21, item 1).

Three processes and this one: the Visma/Brincr stand-in (``bot.simulator``, its own process as
a real upstream is, counting the token requests it receives per 100 ms:
``GET /_control/timeline``), the real bot (``brincr-bot serve --role all``: the scheduler of
``serve``, on a scratch PostgreSQL database), the CSV import (``brincr-bot customers import``,
a process), and this one: the fake Slack Web API (alerts go there) and the measurement.

The fleet is shaped like a real one where it matters for the load: N linked customers, a
fifth of them in the sandbox, one in 50 missing a required scope (in trouble: checked again
sooner, with backoff), plus N ÷ 10 invited customers without a tenant (never checked).

Scenarios, one after the other, each measured from its start:

1. **bulk import**: N customers imported at once (all due), the bot running; two intervals.
2. **steady**: the third interval after the import.
3. **restart**: the bot stopped for 1.25 intervals (every customer overdue), started again;
   two intervals from the start.
4. **outage**: the stand-in answers 503 to every token request for 1.5 intervals, then
   recovers; from the outage's start to two intervals after the recovery.

For each: the most token requests in any 5 s window ÷ the steady rate's (N ÷ CHECK_INTERVAL ×
5 s), target ≤ 2.0; and the longest any customer went without a check (from the scenario's
start, or the restart, or the recovery), target ≤ one interval::

    .venv/bin/python bench/upstream_flatness.py --customers 3000 --interval 60 [--write]
    .venv/bin/python bench/upstream_flatness.py --customers 300 --interval 10   # quick

``--only-import SECONDS`` watches only the first seconds of the bulk import (at
``--interval 300`` the scheduler ticks every 10 s, as at 15 minutes: a burst at each tick
shows there); ``--sources before=/tmp/old,after=.`` runs each checkout's bot in turn (the code
before a change, e.g. from ``git archive``), each on its own scratch database.

Needs PostgreSQL: ``--database-url`` (default ``TEST_DATABASE_URL``) names a server where a
scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import provenance  # noqa: E402
from bench.bench_simulator import free_port  # noqa: E402
from bench.docblock import DOC, replace_block  # noqa: E402
from bot.checks.scheduler import tick_seconds  # noqa: E402
from bot.demo.fake_slack import FakeSlack  # noqa: E402
from storage.db import sync_url  # noqa: E402

CLI = [sys.executable, "-c", "from bot.cli import main; main()"]  # the source on PYTHONPATH
SCOPES = ("brincr:category", "brincr:country")
WINDOW = 5.0  # seconds
TARGET = 2.0  # × the steady rate over any WINDOW
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"

# The stand-in: tenants 1..N approved (a fifth in the sandbox, one in 50 without
# brincr:country), its settings printed as one JSON line once it listens.
STAND_IN = """
import json, sys, uuid
from bot.core.loop import run_event_loop
from bot.simulator import serve_forever
port, latency, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
def seed(sim):
    for i in range(1, n + 1):
        env = "sandbox" if i % 5 == 0 else "production"
        scopes = ["brincr:category"] if i % 50 == 0 else ["brincr:category", "brincr:country"]
        sim.approve(str(uuid.UUID(int=i)), env, scopes)
    print(json.dumps(sim.settings_env()), flush=True)
run_event_loop(serve_forever("127.0.0.1", port, latency, on_start=seed))
"""


def environment(i: int) -> str:
    return "sandbox" if i % 5 == 0 else "production"


def write_csv(path: Path, linked: int) -> None:
    rows = ["kvk,name,environment,tenant_id,account_manager"]
    rows += [f"{10_000_000 + i},Klant {i} B.V.,{environment(i)},{uuid.UUID(int=i)},U0AM{i % 40:03d}"
             for i in range(1, linked + 1)]  # fmt: skip
    rows += [f"{20_000_000 + i},Uitgenodigd {i} B.V.,production,,U0AM{i % 40:03d}"
             for i in range(1, linked // 10 + 1)]  # fmt: skip
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


@dataclass
class Scenario:
    name: str
    start: float  # unix time the scenario began
    end: float  # unix time its measurement ended
    gap_from: float  # unix time from which every customer must be checked within an interval
    note: str


@dataclass
class Result:
    scenario: Scenario
    peak: int  # token requests in the busiest WINDOW
    peak_at: float  # seconds after the start the busiest window began
    ratio: float
    mean_rate: float  # token requests/s over the scenario
    longest_gap: float  # seconds
    late: int  # customers whose longest gap exceeded the interval
    checked: int  # customers checked at least once in the scenario

    def line(self, interval: float, source: str, gaps: bool) -> str:
        flat = "met" if self.ratio <= TARGET else f"**missed** by {self.ratio / TARGET - 1:.0%}"
        allowed = interval + tick_seconds(timedelta(seconds=interval))
        if not gaps:
            within, gap, target = "—", "—", "—"
        else:
            ok = self.longest_gap <= allowed
            within = "met" if ok else f"**missed**: {self.late:,} customers later"
            gap, target = f"{self.longest_gap:.1f}s", f"≤ {allowed:g}s"
        return (
            f"| {source} | {self.scenario.name} | {self.scenario.end - self.scenario.start:.0f}s "
            f"| {self.mean_rate:.1f}/s | {self.peak:,} (at +{self.peak_at:.0f}s) | "
            f"{self.ratio:.2f} | ≤ {TARGET} | {flat} | {gap} | {target} | {within} |"
        )


class Bot:
    """``brincr-bot serve --role all`` as a process on the scratch database, or ``workers``
    ``serve --role worker`` replicas side by side (each claims on its own, as on PostgreSQL)."""

    def __init__(self, env: dict[str, str], log: Path, source: Path, workers: int = 0) -> None:
        self.env, self.log, self.source, self.workers = env, log, source, workers
        self.processes: list[tuple[subprocess.Popen[bytes], int]] = []

    def _spawn(self, role: str, port: int) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [*CLI, "serve", "--role", role], env={**self.env, "PORT": str(port)},
                cwd=self.source, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def start(self) -> None:
        for role in ["worker"] * self.workers or ["all"]:
            port = free_port()
            self.processes.append((self._spawn(role, port), port))
        async with httpx.AsyncClient() as client:
            for process, port in self.processes:
                await self._healthy(client, process, port)

    async def _healthy(
        self, client: httpx.AsyncClient, process: subprocess.Popen[bytes], port: int
    ) -> None:
        for _ in range(300):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"serve exited: see {self.log}")
            await asyncio.sleep(0.2)
        raise SystemExit(f"serve never answered /healthz: see {self.log}")

    async def stop(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        for process, _ in self.processes:
            await asyncio.to_thread(process.wait, 60)
        self.processes = []


async def fault(client: httpx.AsyncClient, stand_in: str, mode: str | None) -> None:
    for env in ("production", "sandbox"):
        response = await client.post(
            f"{stand_in}/_control/faults",
            json={"environment": env, "service": "token", "mode": mode},
        )
        response.raise_for_status()  # fmt: skip


async def scenarios(args: argparse.Namespace, stand_in: str, bot: Bot, csv: Path) -> list[Scenario]:
    interval = args.interval
    out: list[Scenario] = []
    await bot.start()
    await asyncio.sleep(2)  # its first ticks find nothing due
    start = time.time()
    imported = await asyncio.to_thread(
        subprocess.run, [*CLI, "customers", "import", str(csv)], env=bot.env, cwd=bot.source,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if imported.returncode != 0:
        raise SystemExit(f"import failed: {imported.stderr[-2000:]}")
    print(f"bulk import: {imported.stdout.strip()}", flush=True)
    if args.only_import:  # the catch-up's first seconds: where a burst at each tick shows
        await asyncio.sleep(start + args.only_import - time.time())
        await bot.stop()
        return [Scenario("bulk import", start, time.time(), start, "first seconds only")]
    await asyncio.sleep(start + 2 * interval - time.time())
    out.append(Scenario("bulk import", start, time.time(), start,
                        "N customers imported at once, all due; the bot running"))  # fmt: skip
    start = time.time()
    await asyncio.sleep(interval)
    out.append(Scenario("steady", start, time.time(), start, "the third interval after the import"))
    start = time.time()
    await bot.stop()
    await asyncio.sleep(1.25 * interval)
    restarted = time.time()
    await bot.start()
    await asyncio.sleep(restarted + 2 * interval - time.time())
    out.append(Scenario("restart", start, time.time(), restarted,
                        f"stopped for {1.25 * interval:g}s (every customer overdue), then "
                        "started"))  # fmt: skip
    start = time.time()
    async with httpx.AsyncClient() as client:
        await fault(client, stand_in, "down")
        await asyncio.sleep(1.5 * interval)
        await fault(client, stand_in, None)
    recovered = time.time()
    await asyncio.sleep(2 * interval)
    out.append(Scenario("outage", start, time.time(), recovered,
                        f"every token request answered 503 for {1.5 * interval:g}s, then "
                        "normal"))  # fmt: skip
    await bot.stop()
    return out


def _checks(db_url: str) -> dict[int, list[float]]:
    engine = create_engine(sync_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT customer_id, checked_at FROM check_results")).all()
    finally:
        engine.dispose()
    found: dict[int, list[float]] = {}
    for customer, at in rows:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        found.setdefault(customer, []).append(at.timestamp())
    for times in found.values():
        times.sort()
    return found


def judge(
    scenario: Scenario, slots: dict[int, int], per_second: int, checks: dict[int, list[float]],
    customers: int, interval: float,
) -> Result:  # fmt: skip
    first, last = int(scenario.start * per_second), int(scenario.end * per_second)
    width = int(WINDOW * per_second)
    counts = [slots.get(s, 0) for s in range(first, last + 1)]
    prefix = list(itertools.accumulate(counts, initial=0))
    best, best_at = max(
        ((prefix[min(i + width, len(counts))] - prefix[i], i) for i in range(len(counts))),
        default=(0, 0),
    )
    steady = customers / interval * WINDOW
    longest, late, checked = 0.0, 0, 0
    for times in checks.values():
        inside = [t for t in times if scenario.gap_from <= t <= scenario.end]
        checked += bool(inside)
        points = [scenario.gap_from, *inside, scenario.end]
        gap = max(b - a for a, b in itertools.pairwise(points))
        if not inside:
            gap = scenario.end - scenario.gap_from
        longest = max(longest, gap)
        late += gap > interval + tick_seconds(timedelta(seconds=interval))
    late += customers - len(checks)  # never checked at all
    seconds = scenario.end - scenario.start
    return Result(scenario, best, best_at / per_second, best / steady, sum(counts) / seconds,
                  longest, late, checked)  # fmt: skip


def counted_from(scenario: Scenario) -> str:
    if scenario.gap_from == scenario.start:
        return "a check within an interval counted from its start"
    what = "restart" if scenario.name == "restart" else "recovery"
    return f"a check within an interval counted from the {what}"


def layout(args: argparse.Namespace) -> str:
    if args.workers:
        return f"{args.workers} `serve --role worker` processes side by side"
    return "`serve --role all` as a process"


def write_doc(
    args: argparse.Namespace, where: provenance.Where, results: list[tuple[str, Result]]
) -> None:
    steady = args.customers / args.interval
    tick = tick_seconds(timedelta(seconds=args.interval))
    name = "upstream_flatness_ticks" if args.only_import else "upstream_flatness"
    name += "_workers" if args.workers else ""
    begin = f"<!-- {name}:begin (generated by bench/upstream_flatness.py --write) -->"
    end = f"<!-- {name}:end -->"
    prefix = f"With {layout(args)}: t" if args.workers else "T"
    like_15m = ", as at 15 minutes" if tick == tick_seconds(timedelta(minutes=15)) else ""
    if args.only_import:
        heading = (
            f"## {prefix}he first {args.only_import:g} s of a bulk import at `CHECK_INTERVAL="
            f"{args.interval:g}s` (ticks of {tick:g} s{like_15m}) "
            f"(`bench/upstream_flatness.py --only-import`): target ≤ {TARGET} × the steady "
            f"rate over any {WINDOW:g} s"
        )
    else:
        upstream = f"{prefix}he upstream" if args.workers else "Upstream"
        heading = (
            f"## {upstream} load after a bulk import, a restart, an outage "
            f"(`bench/upstream_flatness.py`): target ≤ {TARGET} × the steady rate over any "
            f"{WINDOW:g} s, every customer checked within one interval (+ one scheduler tick)"
        )
    lines = [
        heading,
        "",
        f"{where.sentence()} PostgreSQL on the same machine; the bot is {layout(args)}; "
        f"`CHECK_INTERVAL={args.interval:g}s` (scheduler tick {tick:g} s), "
        f"`CHECK_CONCURRENCY={args.concurrency}`, {args.latency * 1000:.0f} ms stand-in "
        f"latency. {args.customers:,} linked customers (a fifth in the sandbox, one in 50 "
        f"missing a scope) and {args.customers // 10:,} invited ones without a tenant: steady "
        f"rate {steady:.1f} token requests/s, {steady * WINDOW:.0f} per {WINDOW:g} s. Token "
        "requests are counted by the stand-in per 100 ms, refused ones included; checks are "
        "read from `check_results`. *code*: which checkout's bot ran.",
        "",
        "| code | scenario | measured | mean rate | most in any 5 s | ÷ steady | target | verdict "
        "| longest without a check | target | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(r.line(args.interval, source, not args.only_import) for source, r in results),
    ]
    if not args.only_import:
        notes = {r.scenario.name: r for _, r in results}
        lines += ["", *(f"- *{n}*: {r.scenario.note}; {counted_from(r.scenario)}."
                        for n, r in notes.items())]  # fmt: skip
    replace_block(begin, end, "\n".join(lines))
    print(f"wrote {DOC.relative_to(ROOT)}")


def spawn_stand_in(port: int, args: argparse.Namespace) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", STAND_IN, str(port), str(args.latency), str(args.customers)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


async def run(args: argparse.Namespace, db_url: str, tmp: Path, source: Path) -> list[Result]:
    port = free_port()
    stand_in = spawn_stand_in(port, args)
    bot: Bot | None = None
    try:
        assert stand_in.stdout is not None
        upstream = json.loads(await asyncio.to_thread(stand_in.stdout.readline))
        url = f"http://127.0.0.1:{port}"
        async with FakeSlack() as slack:
            env = {
                **os.environ, **upstream, "DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-flat",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
                "SLACK_APP_TOKEN": "", "ALERT_CHANNEL": "C0ALERTS",
                "BRINCR_SCOPES": " ".join(SCOPES), "HOST": "127.0.0.1", "PORT": str(free_port()),
                "LOG_LEVEL": "WARNING",
                "CHECK_INTERVAL": f"{args.interval:g}s", "CHECK_CONCURRENCY": str(args.concurrency),
            }  # fmt: skip
            csv = tmp / "customers.csv"
            write_csv(csv, args.customers)
            env["PYTHONPATH"] = str(source)
            bot = Bot(env, tmp / "serve.log", source, args.workers)
            plan = await scenarios(args, url, bot, csv)
            async with httpx.AsyncClient(timeout=60) as client:
                timeline = (await client.get(f"{url}/_control/timeline")).json()
    finally:
        if bot is not None:
            await bot.stop()
        stand_in.terminate()
        stand_in.wait()
    per_second = int(timeline["slots_per_second"])
    slots = {int(k): int(v) for k, v in timeline["token_requests"].items()}
    checks = await asyncio.to_thread(_checks, db_url)
    return [judge(s, slots, per_second, checks, args.customers, args.interval) for s in plan]


def once(args: argparse.Namespace, source: Path) -> list[Result]:
    """One run of the scenarios with ``source``'s bot, on a scratch database of its own."""
    name = f"flatness_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sync_url(args.database_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                return asyncio.run(run(args, db_url, Path(tmp), source))
            finally:
                if args.keep_log:
                    Path(args.keep_log).write_bytes((Path(tmp) / "serve.log").read_bytes())
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=3000, help="linked customers (N)")
    parser.add_argument("--interval", type=float, default=60.0, help="CHECK_INTERVAL, seconds")
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""),
                        help="a PostgreSQL server; a scratch database is made there")  # fmt: skip
    parser.add_argument("--only-import", type=float, metavar="SECONDS",
                        help="only the bulk import, observed this long")  # fmt: skip
    parser.add_argument("--sources", default=f"this checkout={ROOT}",
                        help="label=path,...: run each checkout's bot in turn (e.g. the code "
                        "before a change, from `git archive`)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=0,
                        help="run this many `serve --role worker` replicas instead of one "
                        "`--role all` process")  # fmt: skip
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument("--keep-log", help="copy serve's log here")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("needs --database-url postgresql://... (or TEST_DATABASE_URL)")
    sources = [tuple(s.split("=", 1)) for s in args.sources.split(",")]
    where = provenance.announce(provenance.SEPARATE, f"the bot ({layout(args)}) apart too")
    steady = args.customers / args.interval
    print(f"customers={args.customers} interval={args.interval:g}s steady={steady:.1f}/s "
          f"window={WINDOW:g}s target<={TARGET}", flush=True)  # fmt: skip
    results: list[tuple[str, Result]] = []
    for label, path in sources:
        for r in once(args, Path(path).resolve()):
            results.append((label, r))
            print(f"{label.replace(' ', '_')}.{r.scenario.name.replace(' ', '_')}: "
                  f"ratio={r.ratio:.2f} peak={r.peak} peak_at=+{r.peak_at:.0f}s "
                  f"mean_rate={r.mean_rate:.1f}/s longest_gap={r.longest_gap:.1f}s "
                  f"late={r.late} checked={r.checked}", flush=True)  # fmt: skip
    if args.write:
        write_doc(args, where, results)
    print(f"finished {datetime.now(UTC):%H:%M} UTC")


if __name__ == "__main__":
    main()
