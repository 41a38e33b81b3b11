"""Query functions for alert holds and peer looks (keyword-only ``session``; the caller owns
the transaction). What a hold is for and when one is released is ``bot.alerts.holds``'s.

Two replicas never both hold, look or release: a hold is one row per customer (primary key),
a look is a conditional UPDATE (or the first INSERT) on one row per cause whose row count
says who won, and the release job takes a due hold with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (SQLite has one writer at a time) and deletes it in the transaction that alerts,
so a replica that dies mid-release leaves the row for the next one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import State
from storage.db import affected_rows
from storage.models import AlertHold, Customer, PeerLook

LOOK_SIZE = 10  # customers whose check a look brings forward


async def hold_of(customer_id: int, *, session: AsyncSession) -> AlertHold | None:
    return await session.get(AlertHold, customer_id)


async def add_hold(
    customer_id: int, cause_key: str, now: datetime, due_at: datetime, *, session: AsyncSession
) -> bool:
    """Hold the customer's alert until ``due_at``; False when it is held already."""
    try:
        async with session.begin_nested():
            session.add(
                AlertHold(customer_id=customer_id, cause_key=cause_key, held_at=now, due_at=due_at)
            )
            await session.flush()
    except IntegrityError:
        return False
    return True


async def drop_holds(customer_ids: list[int], *, session: AsyncSession) -> int:
    """End the holds of customers a group now covers; how many there were."""
    if not customer_ids:
        return 0
    result = await session.execute(
        delete(AlertHold)
        .where(AlertHold.customer_id.in_(customer_ids))
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


async def take_due(now: datetime, *, session: AsyncSession) -> int | None:
    """One due hold, taken for this transaction (deleted; a rollback puts it back): the
    customer whose alert it held, or None when nothing is due."""
    query = (
        select(AlertHold.customer_id)
        .where(AlertHold.due_at <= now)
        .order_by(AlertHold.due_at)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    customer_id = await session.scalar(query)
    if customer_id is None:
        return None
    result = await session.execute(
        delete(AlertHold)
        .where(AlertHold.customer_id == customer_id)
        .execution_options(synchronize_session=False)
    )
    return customer_id if affected_rows(result) == 1 else None


async def claim_look(
    cause_key: str, now: datetime, every: timedelta, *, session: AsyncSession
) -> bool:
    """True for the one caller that may look for peers of this cause now: none looked
    within ``every`` (the check interval)."""
    result = await session.execute(
        update(PeerLook)
        .where(PeerLook.cause_key == cause_key, PeerLook.looked_at <= now - every)
        .values(looked_at=now)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(result) == 1:
        return True
    if await session.get(PeerLook, cause_key) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(PeerLook(cause_key=cause_key, looked_at=now))
            await session.flush()
    except IntegrityError:
        return False  # another replica looked first
    return True


async def bring_forward(
    environment: str,
    held_id: int,
    now: datetime,
    *,
    checked_before: datetime,
    session: AsyncSession,
    limit: int = LOOK_SIZE,
) -> int:
    """Make up to ``limit`` other linked customers of ``environment`` that were healthy at
    their last check due now, soonest due first (the sweep checks them at its next tick).
    Customers being checked right now, or checked since ``checked_before`` (that check
    already answers), are left alone. Returns how many."""
    chosen = (
        select(Customer.id)
        .where(
            Customer.environment == environment,
            Customer.tenant_id.is_not(None),
            Customer.id != held_id,
            Customer.state == State.HEALTHY,
            Customer.next_check_at > now,
            or_(Customer.last_check_at.is_(None), Customer.last_check_at < checked_before),
            or_(Customer.claimed_until.is_(None), Customer.claimed_until < now),
        )
        .order_by(Customer.next_check_at)
        .limit(limit)
    )
    ids = list(await session.scalars(chosen))
    if not ids:
        return 0
    result = await session.execute(
        update(Customer)
        .where(Customer.id.in_(ids))
        .values(next_check_at=now)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


async def count_held(*, session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(AlertHold)) or 0)
