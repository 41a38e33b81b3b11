"""Visma Webhook Dispatcher-style deliveries of tenant events (docs/domain.md, Visma webhooks).

Metadata travels in ``x-vwd-*`` headers; the body format is our guess (Visma does not publish
it). Deliveries run in the background: a failure is logged, never raised.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import uuid
from datetime import UTC, datetime

import aiohttp

logger = logging.getLogger(__name__)

TENANT_ADDED = "tenant_application_added"
TENANT_DELETED = "tenant_application_deleted"
DELIVERY_TIMEOUT = 10.0


def sign_webhook(secret: str, body: bytes) -> str:
    """``X-VWD-Signature-V1``: base64 of HMAC-SHA256(secret, raw body)."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def build_delivery(
    event: str, tenant_id: str, environment: str, application_id: str, secret: str | None
) -> tuple[dict[str, str], bytes]:
    """Headers and raw body of one delivery; unsigned when there is no secret."""
    notification_id = str(uuid.uuid4())
    timestamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    # The body repeats the metadata (so every genuine body is unique and its signature covers the id
    # and time: a replay under fresh headers is refused, docs/domain.md, Visma webhooks).
    body = json.dumps(
        {
            "notificationId": notification_id,
            "timestamp": timestamp,
            "tenantId": tenant_id,
            "applicationId": application_id,
            "eventType": event,
            "environment": environment,
        }
    ).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "x-vwd-event-id": event,
        "x-vwd-tenant-id": tenant_id,
        "x-vwd-application-id": application_id,
        "x-vwd-notification-id": notification_id,
        "x-vwd-notification-timestamp": timestamp,
    }
    if secret is not None:
        headers["X-VWD-Signature-V1"] = sign_webhook(secret, body)
    return headers, body


class WebhookSender:
    """Posts deliveries to one URL in background tasks that :meth:`flush` can await."""

    def __init__(self, url: str, secret: str | None, application_id: str) -> None:
        self.url = url
        self.secret = secret
        self.application_id = application_id
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, event: str, tenant_id: str, environment: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning("simulator: no event loop, webhook %s for %s not sent", event, tenant_id)
            return
        task = loop.create_task(self._deliver(event, tenant_id, environment))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: str, tenant_id: str, environment: str) -> None:
        headers, body = build_delivery(
            event, tenant_id, environment, self.application_id, self.secret
        )
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT)
            )
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                if response.status >= 300:
                    logger.warning(
                        "simulator: webhook %s for %s got HTTP %s",
                        event,
                        tenant_id,
                        response.status,
                    )
                else:
                    logger.info("simulator: webhook %s for %s delivered", event, tenant_id)
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("simulator: webhook %s for %s failed: %r", event, tenant_id, error)

    async def flush(self) -> None:
        """Wait for the deliveries under way."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        if self._session is not None:
            await self._session.close()
            self._session = None
