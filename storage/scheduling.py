"""Claiming due customers for the scheduler, so replicas never check one twice.

PostgreSQL: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``: a replica skips rows
another is claiming right now, and sees them claimed (``claimed_until`` in the future) after
that one commits. SQLite has one writer at a time, so the same statement without the lock
clause is already exclusive (and SQLite runs single-instance).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows
from storage.models import Customer


class Claimed(NamedTuple):
    """A claimed customer and when its check was due."""

    id: int
    due: datetime


async def claim_due(
    *,
    session: AsyncSession,
    now: datetime,
    lease_until: datetime,
    worker: str,
    limit: int,
    due_by: datetime | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` linked customers whose check is due by ``due_by`` (default
    ``now``), most overdue first; rows claimed by another worker until after ``now`` are
    skipped. Returned most overdue first, each with when it was due."""
    due = (
        select(Customer.id)
        .where(
            Customer.tenant_id.is_not(None),
            Customer.next_check_at <= (due_by or now),
            or_(Customer.claimed_until.is_(None), Customer.claimed_until < now),
        )
        .order_by(Customer.next_check_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    result = await session.execute(
        update(Customer)
        .where(Customer.id.in_(due.scalar_subquery()))
        .values(claimed_until=lease_until, claimed_by=worker)
        .returning(Customer.id, Customer.next_check_at)
        .execution_options(synchronize_session=False)
    )
    # next_check_at is set on every row claimed (it was due); `or now` is for the type
    return sorted((Claimed(i, at or now) for i, at in result.all()), key=lambda c: c.due)


async def count_linked(*, session: AsyncSession) -> int:
    total = await session.scalar(
        select(func.count()).select_from(Customer).where(Customer.tenant_id.is_not(None))
    )
    return int(total or 0)


async def release_claims(*, session: AsyncSession, worker: str) -> int:
    """Release every customer ``worker`` still holds (a stopping replica whose sweep was cut):
    another replica checks them at once instead of after the lease."""
    result = await session.execute(
        update(Customer)
        .where(Customer.claimed_by == worker)
        .values(claimed_until=None, claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


async def release(
    ids: Sequence[int], *, session: AsyncSession, worker: str, next_check_at: datetime
) -> int:
    """End ``worker``'s lease on those of ``ids`` it still holds (a check that was not
    recorded: cut short, or its recording failed), due again at ``next_check_at``; returns
    how many were released. Recorded checks already ended their lease."""
    if not ids:
        return 0
    result = await session.execute(
        update(Customer)
        .where(Customer.id.in_(list(ids)), Customer.claimed_by == worker)
        .values(claimed_until=None, claimed_by=None, next_check_at=next_check_at)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


class CheckSnapshot(NamedTuple):
    """What a check needs of a customer."""

    environment: str
    tenant_id: str | None
    missing_scopes: str  # the required scopes missing on record, space-separated
    rollout_missing_scopes: str = ""  # the rollout scopes not switched ON, as last asked
    rollout_asked_at: datetime | None = None  # when a token request last named them


async def check_snapshots(
    customer_ids: Sequence[int], *, session: AsyncSession
) -> dict[int, CheckSnapshot]:
    """What a check needs of each customer, by customer id (customers forgotten meanwhile
    are absent). In chunks of 500."""
    found: dict[int, CheckSnapshot] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = list(customer_ids[start : start + 500])
        rows = await session.execute(
            select(
                Customer.id, Customer.environment, Customer.tenant_id, Customer.missing_scopes,
                Customer.rollout_missing_scopes, Customer.rollout_asked_at,
            ).where(Customer.id.in_(chunk))
        )  # fmt: skip
        found.update({row[0]: CheckSnapshot(*row[1:]) for row in rows})
    return found
