"""The event loop every long-running part of the bot runs on."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it is installed (Linux, macOS): the same asyncio API with
    a faster loop, worth ~15 % of a sweep's time (docs/benchmarks.md); else on asyncio's.
    ``serve``, its check engine process and ``check`` all run on it, so a check is as fast
    whoever starts it."""
    try:
        import uvloop
    except ImportError:  # Windows: uvloop does not exist there
        return asyncio.run(main)
    return uvloop.run(main)


async def abandon_stuck_tasks() -> None:
    """Exit now even if work cut at the stop deadline is still stuck on a stalled database:
    psycopg answers a cancellation with a cancel request and a wait of 5 s each (both
    hard-coded, psycopg/connection_async.py ``wait``), and ``asyncio.run`` would wait for
    them. Nothing is lost by not waiting: claims expire, outbox rows are retried."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    if not leftovers:
        return
    _, pending = await asyncio.wait(leftovers, timeout=ABANDON_AFTER)
    if pending:
        log.warning("%d task(s) stuck on the database abandoned; stopped", len(pending))
        logging.shutdown()
        os._exit(0)


ABANDON_AFTER = 1.0  # seconds cancelled tasks get before the process exits without them
