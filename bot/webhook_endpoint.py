"""``POST /webhooks/visma``: Visma Webhook Dispatcher deliveries about tenants.

The answer comes fast (DOMAIN.md §5: deliveries are retried when slow): verify the signature
on the raw body, store the event keyed by its notification id, answer 202, and process it in a
background task. A repeated notification id hits the primary key and is answered 200 without
processing it again, also when another replica stored it. ``stop()`` waits for the tasks.

Answers: 404 when ``VISMA_WEBHOOK_SECRETS`` is empty (the endpoint is off), 413 over 256 KB,
401 for a missing or wrong signature, 400 when no event or notification id can be read.
Logs name the notification, event, tenant and outcome; never the body or a secret.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.clock import utcnow
from bot.errors import UserError
from bot.linking import tenant_added, tenant_deleted
from bot.outbox import OutboxSender
from bot.services import Services
from bot.webhooks import (
    SIGNATURE_HEADER,
    Delivery,
    WebhookEventKind,
    parse_delivery,
    verify_signature,
)
from storage.models import WebhookEvent

log = logging.getLogger(__name__)
PATH = "/webhooks/visma"
MAX_BODY = 256 * 1024


class VismaWebhook:
    """The endpoint's handler and the component that owns its background tasks."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        """Wait for the deliveries being processed (their outcome is recorded)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def handle(self, request: web.Request) -> web.Response:
        secrets = [s.get_secret_value() for s in self.services.settings.visma_webhook_secrets]
        if not secrets:
            return web.json_response({"error": "not found"}, status=404)
        body = await _read_capped(request)
        if body is None:
            log.warning("visma webhook refused: body over %s bytes", MAX_BODY)
            return web.json_response({"error": "body too large"}, status=413)
        if not verify_signature(secrets, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("visma webhook refused: signature missing or wrong")
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            delivery = parse_delivery(request.headers, body)
        except UserError as error:
            log.info("visma webhook refused: %s", error)
            return web.json_response({"error": str(error)}, status=400)
        if not await self._store(delivery):
            log.info("visma webhook %s repeated: already received", delivery.notification_id)
            return web.json_response({"ok": True, "duplicate": True}, status=200)
        self._spawn(delivery)
        return web.json_response({"ok": True}, status=202)

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
            return await tenant_added(self.services, delivery)
        if delivery.kind is WebhookEventKind.DELETED:
            return await tenant_deleted(self.services, delivery)
        return "ignored"

    async def _finish(self, notification_id: str, outcome: str) -> None:
        async with self.services.db.transaction() as session:
            await session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.notification_id == notification_id)
                .values(processed_at=utcnow(), outcome=outcome[:1000])
            )


async def _read_capped(request: web.Request) -> bytes | None:
    """The raw body, or None when it is longer than MAX_BODY (not read any further)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def install(services: Services, sender: OutboxSender) -> None:
    """Register ``POST /webhooks/visma`` and the component that owns its background work."""
    webhook = VismaWebhook(services)
    services.components.append(webhook)
    services.extras["visma_webhook"] = webhook
    services.extras.setdefault("routes", []).append(("POST", PATH, webhook.handle))
