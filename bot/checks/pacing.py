"""Keeping the event loop responsive while a sweep runs: the sweep yields to Slack.

Slack waits 3 s for an ack, and a person for an answer; a sweep can wait. While people are
using the bot (a Slack request arrived less than ``ACTIVE_FOR`` ago: :meth:`LoopPace.people`,
called by the Slack app's middleware for every request), a sweep keeps at most ``IN_FLIGHT``
checks in flight instead of ``CHECK_CONCURRENCY``: every check in flight adds callbacks to
each turn of the event loop, and a Slack request's path through aiohttp and Bolt takes
several turns, so fewer checks in flight means shorter turns and a quicker ack. Measured with
a 3,000-customer catch-up sweep (docs/benchmarks.md): at 100 in flight the bot's p99 ack was
3.3 × a bare Bolt app's, at 25 about 1.2 ×, with the sweep about twice as long. Checks are
also started only while the event loop keeps time (:class:`LoopPace` samples how late a short
timer fires; while the lag is above ``limit`` a check waits at most MAX_WAIT before it
starts). When nobody is using the bot, a sweep runs at full speed: the pacing would only
slow it down for no one's benefit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

SAMPLE = 0.01  # seconds between lag samples
MAX_WAIT = 0.2  # seconds a check start waits at most, however busy the machine
ACTIVE_FOR = 15.0  # seconds after a Slack request during which sweeps yield to people
IN_FLIGHT = 25  # checks in flight at most while people use the bot (docs/benchmarks.md)


class LoopPace:
    def __init__(self, limit: float = 0.02) -> None:
        self.limit = limit
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None
        self._users = 0
        self._people_at = -ACTIVE_FOR  # monotonic time of the last Slack request
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)

    def people(self) -> None:
        """A person is using the bot now (a Slack request arrived)."""
        self._people_at = time.monotonic()

    async def __aenter__(self) -> LoopPace:
        self._users += 1
        if self._task is None:
            self._task = asyncio.create_task(self._sample(), name="loop-pace")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._users -= 1
        if self._users == 0 and self._task is not None:
            self._task.cancel()
            self._task = None
            self.lag = 0.0

    def people_active(self) -> bool:
        return time.monotonic() - self._people_at <= ACTIVE_FOR

    @contextlib.asynccontextmanager
    async def check(self) -> AsyncIterator[None]:
        """Around one check: while people use the bot, at most IN_FLIGHT checks run at once
        (and each starts only when the loop keeps time); otherwise no limit of its own."""
        if not self.people_active():
            yield
            return
        async with self._in_flight:
            await self.turn()
            yield

    async def turn(self) -> None:
        """Return when the loop keeps time again (at once, usually; at once always when
        nobody used the bot in the last ACTIVE_FOR seconds)."""
        if time.monotonic() - self._people_at > ACTIVE_FOR:
            return
        waited = 0.0
        while self.lag > self.limit and waited < MAX_WAIT:
            await asyncio.sleep(SAMPLE)
            waited += SAMPLE

    async def _sample(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(SAMPLE)
            self.lag = max(0.0, time.perf_counter() - started - SAMPLE)
