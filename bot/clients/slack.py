"""Slack Web API clients. ``SLACK_API_URL`` is honoured by every one of them.

Interactive replies use a client that retries 429 (honouring ``Retry-After``), 5xx and
connection errors a bounded number of times (slack_sdk does not retry 429 by default, see
docs/domain.md, Slack). The outbox sender gets a client without retry handlers: it reschedules the
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
    """The Web API client for ``SLACK_BOT_TOKEN`` at ``SLACK_API_URL``.

    With ``retries`` (interactive calls: replies, views, user groups) it retries connection
    errors, 429 (after ``Retry-After``) and 5xx twice, which slack-sdk does not do by itself.
    The outbox sender's client has none: it reschedules a row instead of sleeping, so one
    rate-limited channel never holds back the others. Without a token (``brincr-bot check``
    builds the bot but delivers nothing) the client exists and is never called.
    """
    token = settings.slack_bot_token
    client = AsyncWebClient(
        token=token.get_secret_value() if token else None,
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
