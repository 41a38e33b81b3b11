"""Helpers for tests that run ``brincr-bot serve`` as a real process: a free local port, the
process itself with its output in a file, and waiting until its ``/readyz`` answers 200."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

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
