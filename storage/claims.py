"""Claimed rows: outbox notifications (``notifications``) and PagerDuty events
(``pager_events``) share one life: ``pending`` until a sender claims the row with a lease
(``claimed_until``, ``claimed_by``), then sent, rescheduled (``next_attempt_at``) or failed.
``bot.sending`` has the rules; these are its queries, for either table (keyword-only
``session``: the caller owns the transaction). A claim is a conditional UPDATE: only one
worker's matches, so two replicas never send the same row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows
from storage.models import Notification, PagerEvent
from storage.statuses import PENDING

ClaimedModel = type[Notification] | type[PagerEvent]


def is_free(model: ClaimedModel, now: datetime) -> ColumnElement[bool]:
    """No worker holds the row (never claimed, or the lease ran out)."""
    return or_(model.claimed_until.is_(None), model.claimed_until < now)


async def claim(
    model: ClaimedModel,
    row_id: int,
    now: datetime,
    lease: timedelta,
    worker: str,
    *,
    session: AsyncSession,
) -> bool:
    """Claim one due row for ``lease``; False when it is not due or another worker holds it."""
    done = await session.execute(
        update(model)
        .where(model.id == row_id, model.status == PENDING)
        .where(model.next_attempt_at <= now, is_free(model, now))
        .values(claimed_until=now + lease, claimed_by=worker)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(done) == 1


async def set_row(
    model: ClaimedModel, row_id: int, *, session: AsyncSession, **values: Any
) -> None:
    """Update one row and release its claim."""
    await session.execute(
        update(model)
        .where(model.id == row_id)
        .values(claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )
