"""The event loop every long-running part of the bot runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it is installed (Linux, macOS): the same asyncio API with
    a faster loop, worth ~15 % of a sweep's time (docs/benchmarks.md); else on asyncio's.
    ``serve``, its check engine thread and ``check`` all run on it, so a check is as fast
    whoever starts it."""
    try:
        import uvloop
    except ImportError:  # Windows: uvloop does not exist there
        return asyncio.run(main)
    return uvloop.run(main)
