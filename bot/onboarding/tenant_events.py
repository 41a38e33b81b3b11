"""Visma "tenant application added/deleted" deliveries, once verified by the endpoint
(:mod:`bot.web.webhook`). The trust rules are docs/domain.md, Visma webhooks and docs/security.md:

- A delivery whose notification timestamp is outside the window (``staleness``) is dropped
  before it is stored.
- Each delivery is stored keyed by its notification id (a retry of it is a *duplicate*) and
  by the SHA-256 of its raw body (the same signed body under fresh headers is a *replay*);
  neither is processed again.
- Processing is bounded: a queue of at most ``QUEUE_LIMIT`` tenants served by ``WORKERS``
  tasks; a delivery for a tenant already waiting is coalesced with it (one confirmation for
  both). A delivery that finds the queue full stays stored, unclaimed, for the retry job.
- A delivery is a hint: :class:`~bot.onboarding.linking.Linking` confirms it with a fresh
  token request before acting.
- A stored row is claimed (``claimed_until``) by whoever processes it. When processing
  fails (Visma's answer inconclusive, the database down, a bug) the row is released with a
  backoff; :meth:`TenantEvents.retry_due` (the ``webhook-retry`` job, on every replica)
  claims and processes released rows until they succeed or, after ``MAX_ATTEMPTS``, are
  given up as invalid.

Logs name the notification, event, tenant and outcome; never the body.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.core.errors import UpstreamError, UserError
from bot.domain.retrying import Backoff
from bot.domain.visma_webhooks import Delivery, WebhookEventKind, event_kind, staleness
from bot.onboarding.linking import Linking
from bot.services import Services
from storage import webhook_events
from storage.models import WebhookEvent

log = logging.getLogger(__name__)
QUEUE_LIMIT = 200  # tenants waiting to be processed; beyond, the retry job takes over
WORKERS = 4  # deliveries processed at once (each costs a token request)
CLAIM = timedelta(minutes=5)  # how long a claimed row is left to its worker
MAX_ATTEMPTS = 8  # then the delivery is judged invalid and given up
RETRY_BATCH = 20  # rows one retry run claims
RETRY_EVERY = timedelta(seconds=30)


class Receipt(StrEnum):
    ACCEPTED = "accepted"  # stored, processed in the background
    DUPLICATE = "duplicate"  # this notification id was received before
    REPLAY = "replay"  # this exact body was received before, under another notification id
    STALE = "stale"  # the notification timestamp is outside the window: dropped


# How long a failed delivery waits before the retry job takes it again: 30 s, 1, 2, 4
# minutes, ... at most an hour (each shortened by up to a quarter at random).
BACKOFF = Backoff(first=timedelta(seconds=30), cap=timedelta(hours=1))


class TenantEvents:
    """Receives verified deliveries and owns their bounded background processing."""

    def __init__(
        self, services: Services, linking: Linking, *, worker_id: str = "bot", process: bool = True
    ) -> None:
        self.services = services
        self.process_here = process  # False on a web replica: stored, left to the workers
        self.linking = linking
        self.worker_id = worker_id
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: dict[str, list[Delivery]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Tenants (or tenant-less deliveries) waiting in the queue."""
        return len(self._pending)

    async def stop(self) -> None:
        """Wait for the queued deliveries (their outcome is recorded), then stop workers."""
        if self._workers:
            await self._queue.join()
        for task in list(self._workers):
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    async def receive(self, delivery: Delivery, now: datetime | None = None) -> Receipt:
        """Store the delivery and queue it (a web replica leaves it to the workers' retry
        job instead); anything but ACCEPTED means nothing is done."""
        stale = staleness(delivery, now or utcnow())
        if stale is not None:
            log.warning(
                "visma webhook %s dropped: %s (%s)",
                delivery.notification_id, stale, delivery.timestamp,
            )  # fmt: skip
            return Receipt.STALE
        receipt = await self._store(delivery)
        if receipt is Receipt.ACCEPTED and not (self.process_here and self._enqueue(delivery)):
            await self._release(delivery.notification_id)
        return receipt

    async def _store(self, delivery: Delivery) -> Receipt:
        now = utcnow()
        row = WebhookEvent(
            notification_id=delivery.notification_id,
            event=delivery.event,
            tenant_id=delivery.tenant_id,
            application_id=delivery.application_id,
            received_at=now,
            body=delivery.body,
            body_hash=delivery.body_hash or None,
            attempts=0,
            claimed_until=now + CLAIM,
            claimed_by=self.worker_id,
        )
        try:
            async with self.services.db.transaction() as session:
                seen = await self._seen(delivery, session)
                if seen is not None:
                    return seen
                session.add(row)
                if delivery.body_hash and not delivery.body_timestamp:
                    # replayable with fresh headers at any time: its hash outlives the row
                    webhook_events.keep_body_hash(delivery.body_hash, now, session=session)
        except IntegrityError:  # stored a moment ago, by another request or replica
            async with self.services.db.transaction() as session:
                return await self._seen(delivery, session) or Receipt.DUPLICATE
        return Receipt.ACCEPTED

    @staticmethod
    async def _seen(delivery: Delivery, session: AsyncSession) -> Receipt | None:
        if await session.get(WebhookEvent, delivery.notification_id) is not None:
            return Receipt.DUPLICATE
        if delivery.body_hash and await webhook_events.body_seen(
            delivery.body_hash, session=session
        ):
            return Receipt.REPLAY
        return None

    # --- the bounded queue ---------------------------------------------------------------

    def _enqueue(self, delivery: Delivery) -> bool:
        """Queue the delivery; coalesced with its tenant's waiting one. False when full."""
        key = delivery.tenant_id or f"notification:{delivery.notification_id}"
        waiting = self._pending.get(key)
        if waiting is not None:
            waiting.append(delivery)
            log.info(
                "visma webhook %s coalesced with %s for tenant %s",
                delivery.notification_id, waiting[0].notification_id, delivery.tenant_id,
            )  # fmt: skip
            return True
        if len(self._pending) >= QUEUE_LIMIT:
            log.warning(
                "visma webhook %s: queue full (%s tenants), left for the retry job",
                delivery.notification_id, QUEUE_LIMIT,
            )  # fmt: skip
            return False
        self._pending[key] = [delivery]
        self._queue.put_nowait(key)
        self._ensure_workers()
        return True

    def _ensure_workers(self) -> None:
        while len(self._workers) < WORKERS:
            task = asyncio.create_task(self._work(), name="visma-webhook")
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            try:
                deliveries = self._pending.pop(key, [])
                if deliveries:
                    *earlier, latest = deliveries
                    for delivery in earlier:
                        await self._finish(
                            delivery.notification_id, f"coalesced into {latest.notification_id}"
                        )
                    await self.process(latest)
            except Exception:  # the row's claim lapses: the retry job takes it
                log.exception("visma webhook worker: recording an outcome failed")
            finally:
                self._queue.task_done()

    # --- processing ----------------------------------------------------------------------

    async def process(self, delivery: Delivery) -> None:
        """Confirm and act on one claimed delivery; record its outcome, or release it for
        a retry when it failed."""
        try:
            outcome = await self._outcome(delivery)
        except UserError as error:
            outcome = f"refused: {error}"
        except UpstreamError as error:
            await self._failed(delivery, str(error))
            return
        except Exception as error:  # a bug or the database: retried, the type named
            log.exception("visma webhook %s processing failed", delivery.notification_id)
            await self._failed(delivery, f"error: {type(error).__name__}")
            return
        await self._finish(delivery.notification_id, outcome)
        log.info(
            "visma webhook %s: %s for tenant %s: %s",
            delivery.notification_id, delivery.event[:60], delivery.tenant_id, outcome,
        )  # fmt: skip

    async def _outcome(self, delivery: Delivery) -> str:
        if delivery.kind is WebhookEventKind.ADDED:
            return await self.linking.tenant_added(delivery)
        if delivery.kind is WebhookEventKind.DELETED:
            return await self.linking.tenant_deleted(delivery)
        return "ignored"

    async def _finish(self, notification_id: str, outcome: str) -> None:
        async with self.services.db.transaction() as session:
            await webhook_events.finish(notification_id, outcome, utcnow(), session=session)

    async def _release(self, notification_id: str) -> None:
        """Leave an unprocessed row to the retry job at once."""
        async with self.services.db.transaction() as session:
            await webhook_events.release(notification_id, session=session)

    async def _failed(self, delivery: Delivery, reason: str) -> None:
        """Count the attempt; release the row with a backoff, or give up after MAX_ATTEMPTS."""
        now = utcnow()
        async with self.services.db.transaction() as session:
            row = await session.get(WebhookEvent, delivery.notification_id)
            if row is None:
                return
            row.attempts = (row.attempts or 0) + 1
            row.claimed_by = None
            if row.attempts >= MAX_ATTEMPTS:
                row.processed_at, row.claimed_until = now, None
                row.outcome = f"given up after {row.attempts} attempts: {reason}"[:1000]
            else:
                row.claimed_until = now + BACKOFF.delay(row.attempts)
                row.outcome = f"retrying (attempt {row.attempts}): {reason}"[:1000]
            outcome = row.outcome
        log.warning(
            "visma webhook %s: %s for tenant %s: %s",
            delivery.notification_id, delivery.event[:60], delivery.tenant_id, outcome,
        )  # fmt: skip

    # --- the retry job -------------------------------------------------------------------

    async def retry_due(self, now: datetime | None = None) -> int:
        """Claim up to RETRY_BATCH unprocessed deliveries whose claim has lapsed (failed,
        left by a full queue, or by a replica that died) and process them one by one.
        Returns how many were processed. Safe on every replica: a row is claimed by a
        conditional update, so two replicas never take the same one."""
        now = now or utcnow()
        async with self.services.db.transaction() as session:
            ids = await webhook_events.claimable_ids(now, session=session, limit=RETRY_BATCH)
        claimed: list[WebhookEvent] = []
        for notification_id in ids:
            async with self.services.db.transaction() as session:
                row = await webhook_events.claim(
                    notification_id, now, CLAIM, self.worker_id, session=session
                )
                if row is not None:
                    claimed.append(row)
        for row in claimed:
            await self.process(_delivery_of(row))
        return len(claimed)


def _delivery_of(row: WebhookEvent) -> Delivery:
    """The stored delivery, as parsed when it was received (body-first, headers filled in)."""
    return Delivery(
        notification_id=row.notification_id,
        event=row.event,
        kind=event_kind(row.event),
        tenant_id=row.tenant_id,
        application_id=row.application_id,
        timestamp=None,
        body=row.body,
        payload=None,
        body_hash=row.body_hash or "",
    )
