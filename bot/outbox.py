"""Outbound Slack messages are rows first (``storage.models.Notification``).

:func:`enqueue` adds a notification inside the caller's transaction, so it is committed
together with the state change that caused it, or not at all. The sender (same module,
``OutboxSender``) delivers rows, records the message ``ts`` and never posts one twice.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import utcnow
from storage.models import Notification

Kind = Literal["post", "update", "reply", "dm"]


async def enqueue(
    session: AsyncSession,
    *,
    kind: Kind,
    channel_id: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    target_id: int | None = None,
    dedupe_key: str | None = None,
) -> Notification:
    """Add a notification to the outbox in the caller's transaction.

    ``blocks`` are Block Kit dicts (``[b.to_dict() for b in blocks]``); ``text`` is the
    fallback Slack shows in notifications. For "update" and "reply", ``target_id`` is the
    notification whose message is updated or replied to. With a ``dedupe_key`` that already
    exists, the existing row is returned and nothing is added.
    """
    if dedupe_key is not None:
        existing = await session.scalar(
            select(Notification).where(Notification.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return existing
    if kind in ("update", "reply") and target_id is None:
        raise ValueError(f"a {kind!r} notification needs target_id")
    now = utcnow()
    row = Notification(
        dedupe_key=dedupe_key,
        created_at=now,
        kind=kind,
        channel_id=channel_id,
        target_id=target_id,
        payload={"text": text, "blocks": blocks or []},
        status="pending",
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    await session.flush()
    return row
