"""Replies through a ``response_url`` that survive Slack's rate limits.

Bolt's ``respond()`` sends one request and hands back the answer, even a 429 or a 5xx, without
retrying (slack_sdk's webhook client is built without retry handlers there). A support
person would then see nothing. :class:`RetryingRespond` tries again, honouring
``Retry-After`` (bounded), and logs the reply it finally could not deliver. The app's
middleware swaps it in for every listener (``handlers.create_app``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.webhook.webhook_response import WebhookResponse

from bot.core.clock import utcnow
from bot.domain.retrying import header_retry_after

log = logging.getLogger(__name__)
ATTEMPTS = 3
MAX_WAIT = 10.0  # seconds; a response_url is valid for 30 minutes


def _retry_after(response: WebhookResponse) -> float:
    """Slack's ``Retry-After`` (1 s when it gives none), between 0.5 s and MAX_WAIT."""
    wait = header_retry_after(response.headers, utcnow())
    return min(MAX_WAIT, max(0.5, wait)) if wait is not None else 1.0


class RetryingRespond(AsyncRespond):
    async def __call__(self, *args: Any, **kwargs: Any) -> WebhookResponse:
        response = await super().__call__(*args, **kwargs)
        for attempt in range(1, ATTEMPTS):
            if response.status_code != 429 and response.status_code < 500:
                return response
            await asyncio.sleep(_retry_after(response) * attempt)
            response = await super().__call__(*args, **kwargs)
        if response.status_code == 429 or response.status_code >= 500:
            log.warning("reply not delivered: Slack answered HTTP %s", response.status_code)
        return response

    @classmethod
    def replacing(cls, respond: AsyncRespond) -> RetryingRespond:
        return cls(response_url=respond.response_url, proxy=respond.proxy, ssl=respond.ssl)
