"""Sweep benchmark: check N customers against the stand-in with added latency.

The stand-in runs in its own process (its CPU is not ours); the bot side is the bot ``serve``
runs, built by the composition root (``bot.composition.build_bot``: the check service with the
alerting and onboarding listeners), recording into a real SQLite file, on the event loop
``serve`` runs (uvloop).
Two sweeps over the same customers: the first after they were imported (every customer goes
``pending`` -> ``healthy``: a state change each) and the steady one that repeats every
``CHECK_INTERVAL`` (nothing changes). Prints each one's wall time ÷ the ideal
``N × (token latency + probe latency) / concurrency``, and the peak RSS of this process.

Then, against the same stand-in, the bare loop of ``bench/check_command.py`` (a process doing
only the token request and the probe per tenant, httpx over aiohttp, the same concurrency,
uvloop): what the machine and the stand-in allow at all (the stand-in mints a token per
request for all three: it caches one for at most a second). Each sweep ÷ that loop is the
bot's own cost::

    .venv/bin/python bench/sweep.py --customers 10000 --concurrency 100 --latency 0.05
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import provenance
from bench.bench_simulator import free_port, wait_ready
from bench.check_command import BARE
from bot.composition import build_bot
from bot.core.loop import run_event_loop
from bot.domain import Environment, State
from bot.settings import load_settings
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.migrate import upgrade

SCOPES = ["brincr:category", "brincr:country"]
# The stand-in approves N tenants (UUIDs 1..N) in its own process at start: its control API
# answers each change with the whole state, which would make 10,000 approvals quadratic.
SERVER = """
import sys, uuid
from bot.core.loop import run_event_loop
from bot.composition import build_bot
from bot.simulator import serve_forever
port, latency, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
def seed(sim):
    for i in range(1, n + 1):
        sim.approve(str(uuid.UUID(int=i)), "production", ["brincr:category", "brincr:country"])
run_event_loop(serve_forever("127.0.0.1", port, latency, on_start=seed))
"""


def tenant(i: int) -> str:
    return str(uuid.UUID(int=i))


async def _wait(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, url)


async def _seed(db: Database, tenants: list[str]) -> list[int]:
    ids = []
    async with db.transaction() as session:
        for n, tenant in enumerate(tenants):
            new = NewCustomer(f"{10_000_000 + n}", f"Klant {n}", Environment.PRODUCTION, tenant)
            ids.append((await add_customer(new, session=session, state=State.PENDING)).id)
    return ids


def main(customers: int, concurrency: int, latency: float) -> None:
    provenance.announce(provenance.SEPARATE, "the bot in the benchmark's process, the bare "
                        "loop in another")  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(latency), str(customers)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # the event loop serve runs on (bot.core.loop.run_event_loop): uvloop
        first, steady = run_event_loop(sweep(url, customers, concurrency, latency))
        bare = subprocess.run(
            [sys.executable, "-c", BARE, url, str(customers), str(concurrency)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        loop = float(bare.split("loop=")[1].split("s")[0])
        print(f"bare: loop={loop:.2f}s ratio={loop / (customers * 2 * latency / concurrency):.2f} "
              f"first_vs_bare={first / loop:.2f} steady_vs_bare={steady / loop:.2f}")  # fmt: skip
    finally:
        server.terminate()
        server.wait()


async def sweep(url: str, customers: int, concurrency: int, latency: float) -> tuple[float, float]:
    """Run both sweeps and print their figures; their wall times."""
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{tmp}/sweep.db"
        upgrade(db_url)
        tenants = [tenant(i) for i in range(1, customers + 1)]
        await _wait(url)
        settings = load_settings(
            database_url=db_url,
            alert_channel="C0BENCH",
            production_client_id="sim-production-client",
            production_client_secret="sim-production-secret",
            production_token_url=f"{url}/production/connect/token",
            production_api_url=f"{url}/production/api/v1/",
            brincr_scopes=" ".join(SCOPES),
            check_concurrency=concurrency,
        )
        bot = build_bot(settings)
        ids = await _seed(bot.db, tenants)
        rounds = []
        for _ in ("first", "steady"):
            started = time.perf_counter()
            outcomes = await bot.checker.check_many(ids)
            rounds.append((time.perf_counter() - started, outcomes))
        await bot.aclose()
    ideal = customers * 2 * latency / concurrency
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"customers={customers} concurrency={concurrency} latency={latency * 1000:.0f}ms")
    for name, (wall, outcomes) in zip(("first", "steady"), rounds, strict=True):
        healthy = sum(1 for o in outcomes if o.healthy)
        print(f"{name}: healthy={healthy} wall={wall:.2f}s ideal={ideal:.2f}s "
              f"ratio={wall / ideal:.2f} checks/s={customers / wall:.0f}")  # fmt: skip
    print(f"peak_rss={rss_mb:.0f}MB")
    return rounds[0][0], rounds[1][0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    main(args.customers, args.concurrency, args.latency)
