"""Memory of ``serve`` under an unauthenticated body flood (issue 19, finding 3).

1,000 connections to ``/slack/events`` each declare ``Content-Length: 1048000`` with a
made-up signature; 200 of them send the whole body, the rest send nothing and wait 10 s. The
serve process's RSS is sampled idle, at its peak during the flood, and 35 s after every
connection closed. ``--source`` runs another checkout's code (e.g. main before the fix)::

    .venv/bin/python bench/body_flood.py [--source /path/to/checkout]

Figures are in docs/security.md (What is bounded).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONNECTIONS = 1000
SENDERS = 200
SIZE = 1_048_000
MB = 1024 * 1024
CHUNK = 64 * 1024


async def _one(port: int, payload: bytes | None, hold: float) -> int | None:
    """One connection: headers, maybe the whole body, then wait for an answer or ``hold``."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: bot\r\n"
        f"Content-Length: {SIZE}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0=00\r\n\r\n"
    )
    status = None
    try:
        async with asyncio.timeout(hold):
            writer.write(head.encode())
            if payload is not None:  # in chunks: this process buffers 64 KB, not the body
                view = memoryview(payload)
                for start in range(0, len(payload), CHUNK):
                    writer.write(view[start : start + CHUNK])
                    await writer.drain()
            await writer.drain()
            line = await reader.readline()
        status = int(line.split()[1]) if line.startswith(b"HTTP/") else None
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return status


async def flood(port: int, *, hold: float = 10.0) -> list[int | None]:
    """The flood; each connection's HTTP status (None: no answer before it closed)."""
    payload = b"x" * SIZE
    jobs = [_one(port, payload if i < SENDERS else None, hold) for i in range(CONNECTIONS)]
    return list(await asyncio.gather(*jobs))


def start_serve(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; main()", "serve"],
            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


@dataclass(frozen=True)
class Memory:
    idle: float
    peak: float
    after: float  # MB


async def measure(
    pid: int, port: int, *, settle: float = 35.0, hold: float = 10.0
) -> tuple[Memory, list[int | None]]:
    process = psutil.Process(pid)
    idle = process.memory_info().rss / MB
    peak = idle
    task = asyncio.ensure_future(flood(port, hold=hold))
    while not task.done():
        peak = max(peak, process.memory_info().rss / MB)
        await asyncio.sleep(0.05)
    await asyncio.sleep(settle)
    after = process.memory_info().rss / MB
    return Memory(idle, peak, after), task.result()


async def _main(source: Path) -> None:
    from bench import provenance

    provenance.announce(provenance.IN_PROCESS, "serve in a separate process; the stand-in only "
                        "answers its start, the flood goes to Slack's endpoint")  # fmt: skip
    from bot.demo.fake_slack import FakeSlack
    from bot.simulator import Simulator
    from tests.harness import ALERTS, BOT_TOKEN, SCOPES, SIGNING_SECRET
    from tests.processes import free_port, wait_ready

    async with FakeSlack() as slack, Simulator() as sim:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ, **sim.settings_env(), "PYTHONPATH": str(source),
                "DATABASE_URL": f"sqlite:///{tmp}/flood.db", "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
                "ALERT_CHANNEL": ALERTS, "BRINCR_SCOPES": " ".join(SCOPES), "HOST": "127.0.0.1",
                "PORT": str(port), "LOG_LEVEL": "ERROR", "SLACK_APP_TOKEN": "",
            }  # fmt: skip
            process = start_serve(env, source, Path(tmp) / "serve.log")
            try:
                await wait_ready(port)
                await asyncio.sleep(2)
                memory, statuses = await measure(process.pid, port)
            finally:
                process.terminate()
                process.wait(timeout=30)
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    print(f"source {source}: RSS idle {memory.idle:.0f} MB, peak {memory.peak:.0f} MB, "
          f"35 s after {memory.after:.0f} MB; answers {dict(sorted(counts.items()))}")  # fmt: skip


async def _measure_only(pid: int, port: int, settle: float, hold: float) -> None:
    """For tests: flood a running serve and print the figures as JSON (the flood's own
    sockets and buffers stay in this process, not the test's)."""
    memory, statuses = await measure(pid, port, settle=settle, hold=hold)
    print(json.dumps({"memory": [memory.idle, memory.peak, memory.after], "statuses": statuses}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT)
    parser.add_argument("--pid", type=int, help="measure this running serve (with --port)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--settle", type=float, default=35.0)
    parser.add_argument("--hold", type=float, default=10.0, help="how long a connection waits")
    args = parser.parse_args()
    if args.pid:
        asyncio.run(_measure_only(args.pid, args.port, args.settle, args.hold))
    else:
        asyncio.run(_main(args.source.resolve()))
