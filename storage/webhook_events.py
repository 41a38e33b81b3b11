"""Query functions for stored Visma webhook deliveries (``webhook_events``; keyword-only
``session``, the caller owns the transaction). A delivery is stored once by its notification
id and its body hash; unprocessed rows are claimed with a conditional UPDATE and a lease, so
the retry job of two replicas never processes one twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows
from storage.models import WebhookBodyHash, WebhookEvent


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        WebhookEvent.processed_at.is_(None),
        or_(WebhookEvent.claimed_until.is_(None), WebhookEvent.claimed_until <= now),
    )


async def body_seen(body_hash: str, *, session: AsyncSession) -> bool:
    """Whether this body (SHA-256, hex) was received before: a stored delivery's, or a kept
    hash of a body without a timestamp of its own whose row was pruned."""
    query = select(WebhookEvent.notification_id).where(WebhookEvent.body_hash == body_hash)
    if await session.scalar(query) is not None:
        return True
    return await session.get(WebhookBodyHash, bytes.fromhex(body_hash)) is not None


def keep_body_hash(body_hash: str, now: datetime, *, session: AsyncSession) -> None:
    """Keep the hash of a body that carries no timestamp of its own for good."""
    session.add(WebhookBodyHash(body_hash=bytes.fromhex(body_hash), first_seen_at=now))


async def finish(
    notification_id: str, outcome: str, now: datetime, *, session: AsyncSession
) -> None:
    """Record the outcome and end the claim."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.notification_id == notification_id)
        .values(processed_at=now, outcome=outcome[:1000], claimed_until=None, claimed_by=None)
    )


async def release(notification_id: str, *, session: AsyncSession) -> None:
    """End the claim without an outcome: the retry job takes the row at once."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.notification_id == notification_id)
        .values(claimed_until=None, claimed_by=None)
    )


async def claimable_ids(now: datetime, *, session: AsyncSession, limit: int) -> list[str]:
    """Unprocessed deliveries whose claim has lapsed, oldest first."""
    return list(
        await session.scalars(
            select(WebhookEvent.notification_id)
            .where(_claimable(now))
            .order_by(WebhookEvent.received_at)
            .limit(limit)
        )
    )


async def claim(
    notification_id: str, now: datetime, lease: timedelta, worker: str, *, session: AsyncSession
) -> WebhookEvent | None:
    """The row, claimed by ``worker`` until now + ``lease``; None when another took it."""
    result = await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.notification_id == notification_id, _claimable(now))
        .values(claimed_until=now + lease, claimed_by=worker)
    )
    if affected_rows(result) != 1:
        return None
    return await session.get(WebhookEvent, notification_id)
