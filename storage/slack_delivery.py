"""Reads about Slack delivery trouble: which channels refuse the outbox's messages, with
what error and since when. ``/brincr status``, the App Home and ``/metrics`` show them; they
never decide readiness (docs/interface.md: /readyz is about this replica)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Notification
from storage.statuses import NotificationStatus

GAVE_UP_SHOWN_FOR = timedelta(days=1)  # a row given up on stays visible this long
NOT_A_PROBLEM = ("ratelimited",)  # a 429 only delays a row; it is no fault to report


@dataclass(frozen=True)
class DeliveryProblem:
    """Messages to ``channel_id`` that Slack refused with ``error``."""

    channel_id: str
    error: str
    since: datetime  # when the oldest affected message was written
    undelivered: int
    given_up: bool  # failed for good (a bug-class error), not retried


async def delivery_problems(*, session: AsyncSession, now: datetime) -> list[DeliveryProblem]:
    """Pending rows whose last attempt failed, and rows given up on in the last day, grouped
    by channel and error, oldest first."""
    failing = or_(
        Notification.status == NotificationStatus.PENDING,
        Notification.created_at >= now - GAVE_UP_SHOWN_FOR,
    )
    rows = await session.execute(
        select(
            Notification.channel_id,
            Notification.last_error,
            Notification.status,
            func.min(Notification.created_at),
            func.count(),
        )
        .where(Notification.status.in_([NotificationStatus.PENDING, NotificationStatus.FAILED]))
        .where(failing, Notification.attempts > 0, Notification.last_error.is_not(None))
        .where(Notification.last_error.not_in(NOT_A_PROBLEM))
        .group_by(Notification.channel_id, Notification.last_error, Notification.status)
        .order_by(func.min(Notification.created_at))
    )
    return [
        DeliveryProblem(
            channel_id=channel,
            error=str(error),
            since=since,
            undelivered=int(count),
            given_up=status == NotificationStatus.FAILED,
        )
        for channel, error, status, since, count in rows
    ]
