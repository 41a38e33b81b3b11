"""Throughput of the simulator's token endpoint.

Runs the simulator in a child process (so the client's CPU is not counted), sends N token
requests at a given concurrency and reports requests/s and the server's CPU use::

    .venv/bin/python bench/bench_simulator.py --requests 2000 --concurrency 100 --latency 0.05

``--tenants`` spreads the requests over that many tenants: 1 is the best case for the token
cache (one signature per second), ``--tenants 2000`` makes every request sign a new token.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import provenance

SCOPES = ["brincr:category", "brincr:country"]
SERVER = (
    "import asyncio, sys; from bot.simulator import serve_forever; "
    "asyncio.run(serve_forever('127.0.0.1', int(sys.argv[1]), float(sys.argv[2])))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(100):
        try:
            async with session.get(f"{url}/_control/state") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the simulator did not start")


async def run(args: argparse.Namespace, url: str, server: psutil.Process) -> None:
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await wait_ready(session, url)
        tenants = [f"tenant-{i}" for i in range(args.tenants)]
        for tenant in tenants:
            body = {"tenant_id": tenant, "environment": "sandbox", "scopes": SCOPES}
            async with session.post(f"{url}/_control/tenants", json=body) as response:
                response.raise_for_status()
        await bench(session, url, tenants, args, server)


async def bench(
    session: aiohttp.ClientSession,
    url: str,
    tenants: list[str],
    args: argparse.Namespace,
    process: psutil.Process,
) -> None:
    statuses: dict[int, int] = {}
    queue = iter(range(args.requests))

    async def worker() -> None:
        for i in queue:
            form = {
                "grant_type": "client_credentials",
                "client_id": "sim-sandbox-client",
                "client_secret": "sim-sandbox-secret",
                "tenant_id": tenants[i % len(tenants)],
                "scope": " ".join(SCOPES),
            }
            async with session.post(f"{url}/sandbox/connect/token", data=form) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    cpu_before = process.cpu_times()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    cpu_after = process.cpu_times()
    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, latency {args.latency}s, "
        f"{args.tenants} tenant(s): {elapsed:.2f}s, {args.requests / elapsed:.0f} req/s, "
        f"server CPU {cpu:.2f}s ({100 * cpu / elapsed:.0f}% of one core, "
        f"{1000 * cpu / args.requests:.2f} ms/request), statuses {statuses}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--tenants", type=int, default=1)
    args = parser.parse_args()
    provenance.announce(provenance.SEPARATE, "the client in the benchmark's process")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(args.latency)])
    try:
        asyncio.run(run(args, f"http://127.0.0.1:{port}", psutil.Process(server.pid)))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
