"""Slack Web API clients. ``SLACK_API_URL`` is honoured by every one of them.

Interactive replies use a client that retries 429 (honouring ``Retry-After``), 5xx and
connection errors a bounded number of times (slack_sdk does not retry 429 by default, see
docs/domain.md, Slack). The outbox sender gets a client without retry handlers: it reschedules the
row instead of sleeping, so one rate-limited channel never holds back the others.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.slack_errors import TRANSIENT_ERRORS
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


def error_code(error: SlackApiError) -> str:
    """Slack's error code (``not_in_channel``), or ``HTTP 503`` when the answer was no Slack
    JSON: an outage or a proxy answers with a page of its own. slack-sdk then hands over a
    ``text/plain`` body as a string (``error.response.get`` raises AttributeError on it), an
    HTML one as ``{}``, and one mislabelled as JSON as aiohttp's raw response."""
    response = error.response
    data = getattr(response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return f"HTTP {status}" if status else "no answer Slack's API would give"


def server_trouble(error: SlackApiError) -> bool:
    """True when the failure is Slack's (or a proxy's) trouble, not a refusal of ours."""
    response = error.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 0
    return int(status) >= 500 or error_code(error) in TRANSIENT_ERRORS


async def delivery_problems(client: AsyncWebClient, channels: dict[str, str]) -> list[str]:
    """What stops the bot from posting to ``channels`` (setting name → channel ID), one line
    per problem saying what to fix; empty when every one can be posted to.

    ``auth.test`` proves the token; ``conversations.info`` shows a channel's membership
    (with ``chat:write.public`` a public channel needs none; a private one does). Without the
    ``channels:read``/``groups:read`` scopes (an app installed before they were added)
    membership cannot be seen: the alert then shows it, and nothing is reported here.
    """
    try:
        await client.auth_test()
    except SlackApiError as error:
        code = error_code(error)
        if server_trouble(error):
            return [f"Slack is not answering at SLACK_API_URL ({code}); alerts wait in the "
                    "outbox until it answers"]  # fmt: skip
        return [f"SLACK_BOT_TOKEN is refused by Slack ({code}): set the bot token (xoxb-…) "
                "of the installed app; alerts wait in the outbox until then"]  # fmt: skip
    except (SlackClientError, OSError, aiohttp.ClientError) as error:
        return [f"Slack is unreachable at SLACK_API_URL ({type(error).__name__}); alerts "
                "wait in the outbox until it answers"]  # fmt: skip
    problems = []
    for setting, channel in channels.items():
        problem = await _channel_problem(client, channel)
        if problem:
            problems.append(f"{setting} {channel}: {problem}")
    return problems


async def _channel_problem(client: AsyncWebClient, channel: str) -> str | None:
    try:
        info = (await client.conversations_info(channel=channel)).get("channel") or {}
    except SlackApiError as error:
        code = error_code(error)
        if code in ("missing_scope", "not_allowed_token_type"):
            return None  # cannot look: see the docstring above
        if code == "channel_not_found":
            return ("Slack knows no such channel, or it is private and the bot is not in it: "
                    "check the ID (channel details → bottom) and /invite the bot")  # fmt: skip
        return f"Slack answers {code} for this channel"
    except (SlackClientError, OSError, aiohttp.ClientError) as error:
        return f"could not be looked up ({type(error).__name__})"
    if info.get("is_archived"):
        return "the channel is archived: unarchive it or set another channel"
    if info.get("is_private") and not info.get("is_member"):
        return "the bot is not a member of this private channel: /invite the bot to it"
    return None
