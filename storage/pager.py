"""Query functions for PagerDuty events (``pager_events``): rows written in the transaction
that changes an incident, claimed by the sender (``storage.claims``, ``bot.sending``) with a
conditional UPDATE and a lease, so each event is sent once across replicas and restarts.
Keyword-only ``session``: the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.claims import is_free
from storage.models import PagerEvent
from storage.statuses import PagerEventStatus

PENDING = PagerEventStatus.PENDING


def _is_free(now: datetime) -> ColumnElement[bool]:
    return is_free(PagerEvent, now)


async def has_event(dedup_key: str, action: str, *, session: AsyncSession) -> bool:
    found = await session.scalar(
        select(PagerEvent.id).where(PagerEvent.dedup_key == dedup_key, PagerEvent.action == action)
    )
    return found is not None


async def due_ids(now: datetime, *, session: AsyncSession, limit: int) -> list[int]:
    """Pending events whose time has come, unclaimed, and not behind an earlier pending event
    of the same incident (a resolve never overtakes its trigger), oldest first."""
    earlier = aliased(PagerEvent)
    waits_for_earlier = (
        select(earlier.id)
        .where(earlier.dedup_key == PagerEvent.dedup_key, earlier.id < PagerEvent.id)
        .where(earlier.status == PENDING)
        .exists()
    )
    query = (
        select(PagerEvent.id)
        .where(PagerEvent.status == PENDING, PagerEvent.next_attempt_at <= now)
        .where(_is_free(now), ~waits_for_earlier)
        .order_by(PagerEvent.id)
        .limit(limit)
    )
    return list(await session.scalars(query))
