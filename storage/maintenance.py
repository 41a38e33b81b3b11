"""Query functions for maintenance windows (keyword-only ``session``; the caller owns the
transaction). A window is active from ``starts_at`` until ``ends_at`` or until its end was
announced; the announcement is claimed with a conditional UPDATE, once across replicas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows
from storage.models import Customer, MaintenanceWindow


def _active(now: datetime) -> ColumnElement[bool]:
    return and_(
        MaintenanceWindow.starts_at <= now,
        MaintenanceWindow.ends_at > now,
        MaintenanceWindow.end_announced_at.is_(None),
    )


async def in_maintenance(environment: str, now: datetime, *, session: AsyncSession) -> bool:
    """True while a window of ``environment`` lasts."""
    found = await session.scalar(
        select(MaintenanceWindow.id).where(
            _active(now), MaintenanceWindow.environment == environment
        )
    )
    return found is not None


async def active_window(
    environment: str, now: datetime, *, session: AsyncSession
) -> MaintenanceWindow | None:
    return await session.scalar(
        select(MaintenanceWindow).where(_active(now), MaintenanceWindow.environment == environment)
    )


async def active_windows(now: datetime, *, session: AsyncSession) -> list[MaintenanceWindow]:
    """Windows that last now, soonest end first."""
    rows = await session.scalars(
        select(MaintenanceWindow).where(_active(now)).order_by(MaintenanceWindow.ends_at)
    )
    return list(rows)


async def end_now(
    environments: Sequence[str], now: datetime, user_id: str, *, session: AsyncSession
) -> None:
    await session.execute(
        update(MaintenanceWindow)
        .where(_active(now), MaintenanceWindow.environment.in_(list(environments)))
        .values(ends_at=now, ended_by=user_id)
        .execution_options(synchronize_session=False)
    )


async def claim_ended(now: datetime, *, session: AsyncSession) -> list[MaintenanceWindow]:
    """Windows that ran out and whose end this caller announces (each claimed once)."""
    due = await session.scalars(
        select(MaintenanceWindow).where(
            MaintenanceWindow.ends_at <= now, MaintenanceWindow.end_announced_at.is_(None)
        )
    )
    claimed = []
    for window in due.all():
        done = await session.execute(
            update(MaintenanceWindow)
            .where(MaintenanceWindow.id == window.id, MaintenanceWindow.end_announced_at.is_(None))
            .values(end_announced_at=now)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(done) == 1:
            claimed.append(window)
    return claimed


async def due_now(
    environment: str, states: Sequence[str], now: datetime, *, session: AsyncSession
) -> None:
    """Make the environment's customers in ``states`` due for a check now."""
    await session.execute(
        update(Customer)
        .where(Customer.environment == environment, Customer.state.in_(list(states)))
        .values(next_check_at=now)
        .execution_options(synchronize_session=False)
    )
