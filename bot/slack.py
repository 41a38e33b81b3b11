"""Slack Web API clients. ``SLACK_API_URL`` is honoured by every one of them.

Interactive replies use a client that retries 429 (honouring ``Retry-After``), 5xx and
connection errors a bounded number of times (slack_sdk does not retry 429 by default, see
DOMAIN.md §6). The outbox sender gets a client without retry handlers: it reschedules the
row instead of sleeping, so one rate-limited channel never holds back the others.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings

TIMEOUT_SECONDS = 15


def web_client(settings: Settings, *, retries: bool = True) -> AsyncWebClient:
    settings.require("slack_bot_token")
    assert settings.slack_bot_token is not None
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=TIMEOUT_SECONDS,
    )
    if retries:
        client.retry_handlers = [
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ]
    return client
