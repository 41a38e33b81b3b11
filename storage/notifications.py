"""Query functions on outbox rows that are not the sender's own (keyword-only ``session``):
rewriting a row that is still pending and unclaimed, so a burst of changes to one message
becomes one Slack call. The sender claims rows with a conditional UPDATE; a rewrite is one
too, so whichever comes first wins and the other sees a row count of 0."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows
from storage.models import Notification
from storage.statuses import NotificationStatus


def _pending_free(now: datetime) -> ColumnElement[bool]:
    return and_(
        Notification.status == NotificationStatus.PENDING,
        or_(Notification.claimed_until.is_(None), Notification.claimed_until < now),
    )


async def rewrite_pending_update(
    target_id: int, payload: dict[str, Any], now: datetime, *, session: AsyncSession
) -> bool:
    """Give the pending, unclaimed update of message ``target_id`` new content; False when
    there is none (the caller adds a new update)."""
    done = await session.execute(
        update(Notification)
        .where(Notification.kind == "update", Notification.target_id == target_id)
        .where(_pending_free(now))
        .values(payload=payload)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(done) > 0


async def last_pending_with_prefix(
    prefix: str, now: datetime, *, session: AsyncSession
) -> Notification | None:
    """The newest pending, unclaimed row whose dedupe key starts with ``prefix``."""
    return await session.scalar(
        select(Notification)
        .where(Notification.dedupe_key.like(prefix + "%"), _pending_free(now))
        .order_by(Notification.id.desc())
        .limit(1)
    )


async def rewrite_pending(
    row_id: int, payload: dict[str, Any], now: datetime, *, session: AsyncSession
) -> bool:
    """Give a pending, unclaimed row new content; False when the sender claimed it first."""
    done = await session.execute(
        update(Notification)
        .where(Notification.id == row_id, _pending_free(now))
        .values(payload=payload)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(done) == 1


async def count_with_prefix(prefix: str, *, session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).where(Notification.dedupe_key.like(prefix + "%"))
    )
    return int(count or 0)
