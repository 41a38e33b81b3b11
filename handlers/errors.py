"""The one error path of the Slack app: listeners let errors rise.

- A :class:`~bot.core.errors.UserError` (bad input, a refusal by the admin gate, a name that
  matches several customers) is answered to the person, ephemerally, saying what was wrong
  and the right form; it is logged at INFO. Every listener is registered through
  :class:`handlers.wiring.Listeners`, which wraps it in :func:`guarded`; that does this inside
  the listener: Bolt's own error handler runs too late for it (a listener that raises right
  after ``ack()`` can have its ack discarded by Bolt's runner,
  slack_bolt/listener/asyncio_runner.py, and Slack then sees a 404 after 3 s).
- Anything else reaches ``@app.error`` (:func:`on_error`): logged at ERROR with an incident id,
  and the person gets a polite reply that quotes the id (never the exception text, which may
  carry upstream details).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncRespond

from bot.core.errors import UserError
from bot.fleet.render import render_candidates
from bot.slack.blocks import render_error, render_notice
from storage.customers import AmbiguousCustomer

log = logging.getLogger(__name__)


Listener = Callable[..., Awaitable[Any]]


def _kind(body: Mapping[str, Any]) -> str:
    return str(body.get("command") or body.get("type") or "request")[:40]


async def answer_user_error(respond: AsyncRespond | None, error: UserError, kind: str) -> None:
    """Tell the person what was wrong and the right form (ephemeral); log it at INFO."""
    log.info("%s refused: %s", kind, error)
    if respond is None or not respond.response_url:
        return
    message = (
        render_candidates(error.query, error.candidates)
        if isinstance(error, AmbiguousCustomer)
        else render_error(error)
    )
    await respond(**message.kwargs(), response_type="ephemeral", replace_original=False)


def guarded(listener: Listener) -> Listener:
    """``listener`` with its UserErrors answered to the person. Bolt passes listeners their
    arguments by name; the wrapper keeps the listener's signature, so Bolt still does."""

    @functools.wraps(listener)
    async def run(**kwargs: Any) -> Any:
        try:
            return await listener(**kwargs)
        except UserError as error:
            await answer_user_error(kwargs.get("respond"), error, _kind(kwargs.get("body") or {}))
            return None

    run.guarded = True  # type: ignore[attr-defined]  # what tests/handlers/test_wiring.py checks
    return run


async def on_error(error: Exception, body: dict[str, Any], respond: AsyncRespond | None) -> None:
    kind = _kind(body)
    can_reply = respond is not None and bool(respond.response_url)
    if isinstance(error, UserError):
        await answer_user_error(respond, error, kind)
        return
    incident = uuid.uuid4().hex[:8]
    log.error("unhandled error %s in %s: %s", incident, kind, type(error).__name__, exc_info=error)
    if can_reply and respond is not None:
        text = f":x: Something went wrong on our side (error id `{incident}`). Please try again."
        await respond(**render_notice(text).kwargs(), response_type="ephemeral")
