"""One sender for claimed rows (outbound messages are rows first): Slack messages
(:class:`bot.outbox.OutboxSender`) and PagerDuty events (:class:`bot.alerts.pager.PagerDutySender`)
are both a :class:`ClaimedRowSender`, which owns the loop and the rules; a subclass owns its
channel: which rows are due, how one is sent, and what the answer means (a :class:`Failure`).

One tick lists due rows in id order and, for each: claims it with a conditional UPDATE and a
lease (``storage.claims``: only one worker's UPDATE matches, so two replicas never send the
same row; a worker that dies holding a claim delays its row by at most ``claim_for``), sends
it, and records the answer:

- sent: done.
- rate limited (``Failure.retry_after``): the row waits that long, not counted as an attempt
  (it is no fault of the row), and the tick stops: the rest waits too.
- permanent (the row itself is wrong: a malformed message, an event PagerDuty calls invalid):
  failed, never retried.
- anything else (an outage, a configuration problem someone can fix): rescheduled with the
  channel's :class:`~bot.domain.retrying.Backoff` (jittered) and retried until it is
  delivered. Nothing is given up for lasting long.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.domain.retrying import Backoff
from bot.ticker import Ticker
from storage import claims
from storage.db import Database
from storage.models import Notification, PagerEvent

Row = TypeVar("Row", Notification, PagerEvent)
FAILED = "failed"  # NotificationStatus.FAILED, PagerEventStatus.FAILED


class Step(Enum):
    """What became of one row in a tick."""

    SENT = "sent"
    SKIPPED = "skipped"  # claimed elsewhere, waiting, superseded, rescheduled or failed
    RATE_LIMITED = "rate_limited"  # the tick stops


@dataclass(frozen=True)
class Failure:
    """A send that did not go through, as the channel classified it."""

    error: str  # an error code, an HTTP status or an exception class: safe to store and log
    permanent: bool = False  # the row can never be delivered as it is
    retry_after: float | None = None  # seconds: rate limited (not an attempt; the tick stops)
    status: int | None = None  # the HTTP status the far end answered, if it answered
    transient: bool = False  # an outage (5xx, network): worth a word only when it lasts


class ClaimedRowSender(ABC, Generic[Row]):
    """The claim → send → record loop; ``deliver_due()`` is one tick, ``start()`` runs ticks
    every ``poll_interval`` seconds (or sooner after ``wake()``) until ``stop()``."""

    model: type[Row]  # the table (a class attribute of each subclass)
    backoff: ClassVar[Backoff]

    def __init__(
        self,
        db: Database,
        *,
        name: str,
        worker_id: str,
        poll_interval: float,
        batch: int,
        claim_for: timedelta,
        log: logging.Logger,
    ) -> None:
        self._db = db
        self.worker_id = worker_id
        self._batch = batch
        self._claim_for = claim_for
        self._ticker = Ticker(
            f"{name}-{worker_id}", self.deliver_due, poll_interval=poll_interval, log=log
        )

    async def start(self) -> None:
        await self._ticker.start()

    async def stop(self) -> None:
        """Stop after the row being delivered now (its outcome is recorded)."""
        await self._ticker.stop()

    def wake(self) -> None:
        self._ticker.wake()

    async def deliver_due(self) -> int:
        """Claim due rows in id order and deliver them; returns how many were sent."""
        sent = 0
        for row_id in await self._due_ids(utcnow()):
            if self._ticker.stopping:
                break
            step = await self._deliver(row_id)
            if step is Step.RATE_LIMITED:
                break  # the rest next tick
            sent += step is Step.SENT
        return sent

    @abstractmethod
    async def _due_ids(self, now: datetime) -> list[int]:
        """The ids of the rows to try in this tick, in order."""

    @abstractmethod
    async def _deliver(self, row_id: int) -> Step:
        """Claim (:meth:`_claim`), send and record one row."""

    async def _claim(self, row_id: int, session: AsyncSession) -> Row | None:
        """Claim the row in ``session``'s transaction; None when it is not ours to send."""
        now = utcnow()
        if not await claims.claim(
            self.model, row_id, now, self._claim_for, self.worker_id, session=session
        ):
            return None
        return await session.get_one(self.model, row_id)

    async def _set_row(self, row_id: int, **values: Any) -> None:
        """Update the row in its own transaction and release the claim."""
        async with self._db.transaction() as session:
            await claims.set_row(self.model, row_id, session=session, **values)

    def _after_failure(self, row: Row, failure: Failure) -> tuple[dict[str, Any], str]:
        """The row's new columns after ``failure`` and a few words for the log."""
        now = utcnow()
        values: dict[str, Any] = {"last_error": failure.error}
        if failure.retry_after is not None:
            values["next_attempt_at"] = now + timedelta(seconds=failure.retry_after)
            return values, f"rate limited, retry in {failure.retry_after:g}s"
        values["attempts"] = attempts = row.attempts + 1
        if failure.permanent:
            values["status"] = FAILED
            return values, "given up: it can never be delivered as it is"
        wait = self.backoff.delay(attempts)
        values["next_attempt_at"] = now + wait
        return values, f"attempt {attempts}, retry in {wait.total_seconds():.0f}s"

    async def _record_failure(self, row: Row, failure: Failure) -> Step:
        """Reschedule or fail the row, release its claim, and say so (:meth:`_note_failure`)."""
        values, words = self._after_failure(row, failure)
        await self._set_row(row.id, **values)
        self._note_failure(row, failure, given_up=values.get("status") == FAILED, words=words)
        return Step.RATE_LIMITED if failure.retry_after is not None else Step.SKIPPED

    @abstractmethod
    def _note_failure(self, row: Row, failure: Failure, *, given_up: bool, words: str) -> None:
        """Log and count a failure the channel's way."""
