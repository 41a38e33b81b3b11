"""``brincr-bot check`` against a bare httpx-over-aiohttp loop, measured in the same run.

The stand-in runs in its own process with ``--latency`` added to every answer (each way of a
check: the token request and the probe) and N approved tenants. Two processes do the same N
checks at the same concurrency, alternately, ``--rounds`` times each:

- **command**: ``brincr-bot check --json`` over N imported customers (SQLite): the real
  command, process start, settings, migrations check, the bot built by the composition root,
  every check recorded with its listeners;
- **bare**: a Python process that does nothing but the requests: an ``httpx.AsyncClient`` over
  ``httpx_aiohttp.AiohttpTransport``, a token POST then a probe GET per tenant, the same
  concurrency, on the same event loop (uvloop).

Prints the median wall time of each and their ratio (target: command ≤ 1.25 × bare)::

    .venv/bin/python bench/check_command.py --customers 1000 --concurrency 50 --latency 0.05
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import provenance  # noqa: E402
from bench.bench_simulator import free_port  # noqa: E402

BIN = str(Path(sys.executable).with_name("brincr-bot"))
SCOPES = ["brincr:category", "brincr:country"]
SERVER = """
import sys, uuid
from bot.core.loop import run_event_loop
from bot.simulator import serve_forever
port, latency, n = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
def seed(sim):
    for i in range(1, n + 1):
        sim.approve(str(uuid.UUID(int=i)), "production", ["brincr:category", "brincr:country"])
run_event_loop(serve_forever("127.0.0.1", port, latency, on_start=seed))
"""
BARE = """
import asyncio, sys, time, uuid
import httpx
from httpx_aiohttp import AiohttpTransport
import uvloop

url, n, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
token_url, api_url = f"{url}/production/connect/token", f"{url}/production/api/v1/categories"
SCOPE = "brincr:category brincr:country"
CLIENT, SECRET = "sim-production-client", "sim-production-secret"

async def main():
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=10) as client:
        todo = iter(range(1, n + 1))
        ok = 0
        async def worker():
            nonlocal ok
            for i in todo:
                form = {"grant_type": "client_credentials", "scope": SCOPE,
                        "tenant_id": str(uuid.UUID(int=i)), "client_id": CLIENT,
                        "client_secret": SECRET}
                token = await client.post(token_url, data=form)
                bearer = token.json()["access_token"]
                probe = await client.get(api_url, headers={"Authorization": f"Bearer {bearer}",
                                                           "Accept": "application/json"})
                ok += probe.status_code == 200
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok

started = time.perf_counter()
ok = uvloop.run(main())
print(f"ok={ok} loop={time.perf_counter() - started:.2f}s")
"""


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_control/state", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the stand-in did not start")


def timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, done.stdout


def main(customers: int, concurrency: int, latency: float, rounds: int) -> None:
    provenance.announce(provenance.SEPARATE, "the command and the bare loop each a process")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(latency),
                               str(customers)])  # fmt: skip
    try:
        wait_ready(url)
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite:///{tmp}/check.db",
                "PRODUCTION_CLIENT_ID": "sim-production-client",
                "PRODUCTION_CLIENT_SECRET": "sim-production-secret",
                "PRODUCTION_TOKEN_URL": f"{url}/production/connect/token",
                "PRODUCTION_API_URL": f"{url}/production/api/v1/",
                "BRINCR_SCOPES": " ".join(SCOPES),
                "CHECK_CONCURRENCY": str(concurrency),
                "ALERT_CHANNEL": "C0BENCH",
            }
            rows = ["kvk,name,environment,tenant_id,account_manager"] + [
                f"{10_000_000 + i},Klant {i},production,{uuid.UUID(int=i)}," for i in
                range(1, customers + 1)
            ]  # fmt: skip
            (Path(tmp) / "customers.csv").write_text("\n".join(rows) + "\n")
            imported = subprocess.run(
                [BIN, "customers", "import", f"{tmp}/customers.csv"],
                env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if imported.returncode != 0:
                raise SystemExit(f"import failed: {imported.stderr[-2000:]}")
            command, bare = [], []
            for _ in range(rounds):
                wall, out = timed([BIN, "check", "--json"], env)
                healthy = out.count('"state": "healthy"')
                command.append(wall)
                wall, out = timed(
                    [sys.executable, "-c", BARE, url, str(customers), str(concurrency)], env
                )
                bare.append(wall)
    finally:
        server.terminate()
        server.wait()
    ideal = customers * 2 * latency / concurrency
    c, b = statistics.median(command), statistics.median(bare)
    print(f"customers={customers} concurrency={concurrency} latency={latency * 1000:.0f}ms "
          f"rounds={rounds} ideal={ideal:.2f}s")  # fmt: skip
    print(f"command: wall={c:.2f}s healthy={healthy} runs={','.join(f'{w:.2f}' for w in command)}")
    print(f"bare: wall={b:.2f}s {out.strip()} runs={','.join(f'{w:.2f}' for w in bare)}")
    print(f"ratio={c / b:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.customers, args.concurrency, args.latency, args.rounds)
