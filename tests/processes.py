"""Helpers for tests that run ``brincr-bot serve`` as a real process: a free local port, the
process itself with its output in a file, waiting until its ``/readyz`` answers 200, and a
fleet for the replicas to share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.domain import Environment, State
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from tests.conftest import _truncate
from tests.harness import SCOPES

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``brincr-bot serve`` with ``env`` and ``args`` (e.g. ``--role``, ``web``); alerts at
    once unless ``env`` sets ALERT_GROUP_WAIT."""
    env = {"ALERT_GROUP_WAIT": "0", **env}
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "serve", *args],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def kill_whole(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a ``serve`` and every process it started (its check engine) at once, as the
    OOM killer or a container runtime kills a container. The parent is frozen first, so it
    sees none of its children die. (The listener alone killed is
    ``tests/test_check_engine.py``'s case: its engine stops by itself.)"""
    os.kill(process.pid, signal.SIGSTOP)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)
    process.kill()
    process.wait(timeout=10)


async def wait_ready(port: int, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"replica on port {port} never became ready")


async def seed_fleet(database_url: str, sim: Simulator, count: int, first_kvk: int) -> list[str]:
    """Empty the database at ``database_url`` and add ``count`` linked production customers
    (KvK numbers from ``first_kvk``), every scope approved at the stand-in, each pending its
    first check; returns their tenant IDs in KvK order."""
    _truncate(database_url)
    tenants = [f"00000000-0000-4000-8000-{i:012d}" for i in range(count)]
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for i, tenant in enumerate(tenants):
                sim.approve(tenant, "production", list(SCOPES))
                new = NewCustomer(f"{first_kvk + i}", f"Klant {i}", Environment.PRODUCTION, tenant)
                await add_customer(new, session=session, state=State.PENDING)
    finally:
        await db.close()
    return tenants
