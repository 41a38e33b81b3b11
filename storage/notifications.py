"""Query functions on outbox rows (keyword-only ``session``; the caller owns the transaction):
the sender's steps (due rows, claims, superseding older updates, outcomes; ``bot/outbox.py``
has the rules), and rewriting a row that is still pending and unclaimed, so a burst of changes
to one message becomes one Slack call. Claims and rewrites are conditional UPDATEs, so
whichever comes first wins and the other sees a row count of 0."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.claims import is_free
from storage.db import affected_rows
from storage.models import Notification
from storage.statuses import NotificationStatus


def _pending_free(now: datetime) -> ColumnElement[bool]:
    return and_(
        Notification.status == NotificationStatus.PENDING,
        is_free(Notification, now),
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


# --- the sender's own steps (bot/outbox.py) ---------------------------------------------


def _free(now: datetime) -> ColumnElement[bool]:
    return is_free(Notification, now)


async def by_dedupe_key(key: str, *, session: AsyncSession) -> Notification | None:
    return await session.scalar(select(Notification).where(Notification.dedupe_key == key))


async def due_ids(
    now: datetime, paused_channels: Sequence[str], *, session: AsyncSession, limit: int
) -> list[int]:
    """Pending rows whose time has come, unclaimed, not in a channel that waits out a 429, in
    id order. A reply or update whose target cannot go in this tick is left out, so waiting
    rows never fill the batch; one whose target is due comes after it (ids ascend)."""
    target = aliased(Notification)
    target_waits = (
        select(target.id)
        .where(target.id == Notification.target_id, target.status == NotificationStatus.PENDING)
        .where(or_(target.next_attempt_at > now, target.claimed_until >= now))
        .exists()
    )
    query = (
        select(Notification.id)
        .where(Notification.status == NotificationStatus.PENDING)
        .where(Notification.next_attempt_at <= now, _free(now), ~target_waits)
        .where(Notification.channel_id.not_in(list(paused_channels)))
        .order_by(Notification.id)
        .limit(limit)
    )
    return list(await session.scalars(query))


def _same_message(row: Notification) -> ColumnElement[bool]:
    return and_(
        Notification.kind == "update",
        Notification.target_id == row.target_id,
        Notification.status == NotificationStatus.PENDING,
    )


async def pending_updates(row: Notification, *, newer: bool, session: AsyncSession) -> int:
    """How many pending updates of the same message are newer (or older) than ``row``."""
    count = select(func.count()).select_from(Notification).where(_same_message(row))
    side = Notification.id > row.id if newer else Notification.id < row.id
    return int(await session.scalar(count.where(side)) or 0)


async def supersede_older_free(row: Notification, now: datetime, *, session: AsyncSession) -> None:
    """Supersede the older pending updates of the same message no worker holds."""
    await session.execute(
        update(Notification)
        .where(_same_message(row), Notification.id < row.id, _free(now))
        .values(status=NotificationStatus.SUPERSEDED, last_error=f"superseded by {row.id}")
        .execution_options(synchronize_session=False)
    )


async def retry_waiting_now(now: datetime, channel: str | None, *, session: AsyncSession) -> int:
    """Make rows waiting out a backoff after a failure (of ``channel``, or all) due now."""
    query = (
        update(Notification)
        .where(Notification.status == NotificationStatus.PENDING, Notification.attempts > 0)
        .where(Notification.next_attempt_at > now, _free(now))
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    if channel is not None:
        query = query.where(Notification.channel_id == channel)
    return affected_rows(await session.execute(query))
