"""``POST /webhooks/visma``: Visma Webhook Dispatcher deliveries about tenants.

The answer comes fast (deliveries are retried when slow: docs/domain.md, Visma webhooks):
verify the signature on the raw body, read the delivery from the signed body (headers only
fill in what it does not say), hand it to
:class:`~bot.onboarding.tenant_events.TenantEvents` (stored, processed in the background) and
answer 202. A repeated notification id, a replayed body and a stale notification timestamp
are answered 200 without processing anything (``{"ok": true, "dropped": <why>}``).

Answers: 404 when ``VISMA_WEBHOOK_SECRETS`` is empty (the endpoint is off), 413 over 256 KB,
503 while the listener's body budget is spent and 400 for a body cut short
(:mod:`bot.web.bodies`),
401 for a missing or wrong signature, 400 when no event or notification id can be read, a
header contradicts the signed body, a value is longer than its column or the timestamp is
unreadable. Logs name the notification, event, tenant and outcome; never the body or a
secret; a refused request is logged with its size and reason only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.core.errors import UserError
from bot.domain.visma_webhooks import (
    SIGNATURE_HEADER,
    parse_delivery,
    verify_signature,
)
from bot.onboarding.tenant_events import Receipt, TenantEvents
from bot.settings import Settings
from bot.web.bodies import BodyBudget, BodyRefused

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.Response]]
PATH = "/webhooks/visma"
MAX_BODY = 256 * 1024


def webhook_handler(settings: Settings, events: TenantEvents, budget: BodyBudget) -> Handler:
    """The aiohttp handler of ``POST /webhooks/visma``."""

    async def handle(request: web.Request) -> web.Response:
        secrets = [s.get_secret_value() for s in settings.visma_webhook_secrets]
        if not secrets:
            return web.json_response({"error": "not found"}, status=404)
        try:
            body = await budget.read(request, MAX_BODY)
        except BodyRefused as refused:
            log.warning("visma webhook refused (%s bytes): %s", refused.size, refused.reason)
            return refused.response()
        if not verify_signature(secrets, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("visma webhook refused (%s bytes): signature missing or wrong", len(body))
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            delivery = parse_delivery(request.headers, body)
        except UserError as error:
            log.warning("visma webhook refused (%s bytes): %s", len(body), error)
            return web.json_response({"error": str(error)}, status=400)
        receipt = await events.receive(delivery)
        if receipt is Receipt.ACCEPTED:
            return web.json_response({"ok": True}, status=202)
        if receipt is not Receipt.STALE:
            log.info("visma webhook %s dropped: %s", delivery.notification_id, receipt.value)
        return web.json_response(
            {"ok": True, "dropped": receipt.value, "duplicate": receipt is Receipt.DUPLICATE},
            status=200,
        )

    return handle
