"""A background loop for the senders (Slack outbox, PagerDuty events): one ``tick()`` every
``poll_interval`` seconds, or sooner after :meth:`Ticker.wake`, until :meth:`Ticker.stop`.

Nothing ends the loop: a database outage is one WARNING line when it starts and then one a
minute (a sender ticks every second), any other failure is logged with its traceback, and the
next tick tries again. ``stop()`` lets the row being delivered finish (its outcome is
recorded); a tick checks :attr:`Ticker.stopping` between rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from storage.db import DATABASE_ERRORS, one_line

DATABASE_LOG_EVERY = 60.0  # seconds between two lines about one database outage


class Ticker:
    def __init__(
        self,
        name: str,
        tick: Callable[[], Awaitable[object]],
        *,
        poll_interval: float,
        log: logging.Logger,
    ) -> None:
        self.name = name
        self._tick = tick
        self._poll_interval = poll_interval
        self._log = log
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stopping = False
        self._failing_since: float | None = None  # loop time the database began failing
        self._logged_at = 0.0

    async def start(self) -> None:
        if self._task is None:
            self.stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is None:
            return
        self.stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        await task

    def wake(self) -> None:
        self._wakeup.set()

    async def _run(self) -> None:
        while not self.stopping:
            self._wakeup.clear()
            try:
                await self._tick()
                self._failing_since = None
            except DATABASE_ERRORS as error:  # an outage: a line a minute, no traceback
                self._database_failed(error)
            except Exception:  # a bug must not end the loop either; the next tick retries
                self._log.exception("%s tick failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    def _database_failed(self, error: BaseException) -> None:
        now = asyncio.get_running_loop().time()
        if self._failing_since is None:
            self._failing_since = self._logged_at = now
        elif now - self._logged_at < DATABASE_LOG_EVERY:
            return
        self._logged_at = now
        failing = now - self._failing_since
        self._log.warning(
            "%s tick failed (database, %.0fs): %s", self.name, failing, one_line(error)
        )
