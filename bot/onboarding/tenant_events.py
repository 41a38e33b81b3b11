"""Visma "tenant application added/deleted" deliveries, once verified by the endpoint
(:mod:`bot.web.webhook`): each is stored keyed by its notification id, so a repeated one
(also stored by another replica) is not processed again, and processed in a background task
that links or checks the customer through :class:`~bot.onboarding.linking.Linking`.
``stop()`` waits for the tasks. Logs name the notification, event, tenant and outcome;
never the body.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain.delivery import Delivery, WebhookEventKind
from bot.onboarding.linking import Linking
from bot.services import Services
from storage.models import WebhookEvent

log = logging.getLogger(__name__)


class TenantEvents:
    """Receives verified deliveries and owns their background processing."""

    def __init__(self, services: Services, linking: Linking) -> None:
        self.services = services
        self.linking = linking
        self._tasks: set[asyncio.Task[None]] = set()

    async def stop(self) -> None:
        """Wait for the deliveries being processed (their outcome is recorded)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def receive(self, delivery: Delivery) -> bool:
        """Store the delivery and process it in the background; False when its notification
        id was received before (a retry: nothing is done again)."""
        if not await self._store(delivery):
            return False
        self._spawn(delivery)
        return True

    async def _store(self, delivery: Delivery) -> bool:
        """Insert the event; False when its notification id was stored before."""
        row = WebhookEvent(
            notification_id=delivery.notification_id,
            event=delivery.event[:100],
            tenant_id=delivery.tenant_id,
            application_id=(delivery.application_id or "")[:100] or None,
            received_at=utcnow(),
            body=delivery.body,
        )
        try:
            async with self.services.db.transaction() as session:
                session.add(row)
        except IntegrityError:
            return False
        return True

    def _spawn(self, delivery: Delivery) -> None:
        task = asyncio.create_task(self._process(delivery), name="visma-webhook")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("visma webhook processing failed", exc_info=task.exception())

    async def _process(self, delivery: Delivery) -> None:
        outcome = "failed"  # kept when processing raises (the done callback logs why)
        try:
            outcome = await self._outcome(delivery)
        except UserError as error:
            outcome = f"refused: {error}"
        finally:
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
            await session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.notification_id == notification_id)
                .values(processed_at=utcnow(), outcome=outcome[:1000])
            )
