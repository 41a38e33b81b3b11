"""Query functions for PagerDuty events (``pager_events``): rows written in the transaction
that changes an incident, claimed by a sender with a conditional UPDATE and a lease, so each
event is sent once across replicas and restarts. Keyword-only ``session`` where the caller
owns the transaction; the sender's own steps open theirs on ``db``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.db import affected_rows
from storage.models import PagerEvent

PENDING = "pending"


def _is_free(now: datetime) -> ColumnElement[bool]:
    return or_(PagerEvent.claimed_until.is_(None), PagerEvent.claimed_until < now)


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


async def claim(
    event_id: int, now: datetime, lease: timedelta, worker: str, *, session: AsyncSession
) -> bool:
    done = await session.execute(
        update(PagerEvent)
        .where(PagerEvent.id == event_id, PagerEvent.status == PENDING)
        .where(PagerEvent.next_attempt_at <= now, _is_free(now))
        .values(claimed_until=now + lease, claimed_by=worker)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(done) == 1


async def record(event_id: int, values: dict[str, Any], *, session: AsyncSession) -> None:
    await session.execute(
        update(PagerEvent)
        .where(PagerEvent.id == event_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
