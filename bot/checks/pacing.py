"""Keeping the event loop responsive while a sweep runs: the sweep yields to Slack.

Slack waits 3 s for an ack, and a person for an answer; a sweep can wait. While people are
using the bot (a Slack request arrived less than ``ACTIVE_FOR`` ago: :meth:`LoopPace.people`,
called by the Slack app's middleware for every request), checks are started only while the
event loop keeps time: :class:`LoopPace` samples how late a short timer fires (the loop's
lag), and while the lag is above ``limit`` workers wait before starting their next check (at
most MAX_WAIT), so the loop's queue of ready callbacks shrinks and a Slack request gets its
turn within a few iterations. When nobody is using the bot, a sweep runs at full speed: the
pacing would only slow it down (on a busy machine, by a factor) for no one's benefit.
"""

from __future__ import annotations

import asyncio
import time

SAMPLE = 0.01  # seconds between lag samples
MAX_WAIT = 0.2  # seconds a check start waits at most, however busy the machine
ACTIVE_FOR = 15.0  # seconds after a Slack request during which sweeps yield to people


class LoopPace:
    def __init__(self, limit: float = 0.02) -> None:
        self.limit = limit
        self.lag = 0.0
        self._task: asyncio.Task[None] | None = None
        self._users = 0
        self._people_at = -ACTIVE_FOR  # monotonic time of the last Slack request

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
