"""Query functions for invitations. Every function takes ``session`` by keyword; the caller
owns the transaction. Claims are conditional UPDATEs whose row count says who won, so two
replicas never approve or nudge the same invitation twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows
from storage.models import Invitation, Notification
from storage.statuses import InvitationStatus

OPEN = InvitationStatus.OPEN


async def cancel_open(customer_id: int, *, session: AsyncSession) -> None:
    """Cancel the customer's open invitations (only the newest one is tracked)."""
    await session.execute(
        update(Invitation)
        .where(Invitation.customer_id == customer_id, Invitation.status == OPEN)
        .values(status=InvitationStatus.CANCELLED)
    )


async def latest(customer_id: int, *, session: AsyncSession) -> Invitation | None:
    return await session.scalar(
        select(Invitation)
        .where(Invitation.customer_id == customer_id)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(1)
    )


async def claim_approval(invitation_id: int, when: datetime, *, session: AsyncSession) -> bool:
    """Mark the invitation approved; False when it was not open any more."""
    claim = (
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.status == OPEN)
        .values(status=InvitationStatus.APPROVED, approved_at=when)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(await session.execute(claim)) == 1


async def last_partial_update(
    invitation_id: int, *, session: AsyncSession
) -> tuple[int, str] | None:
    """The outbox row (id, dedupe key) of the hand-off's latest "partly approved" update."""
    row = (
        await session.execute(
            select(Notification.id, Notification.dedupe_key)
            .where(Notification.dedupe_key.like(f"handoff-partial:{invitation_id}:%"))
            .order_by(Notification.id.desc())
            .limit(1)
        )
    ).first()
    return (int(row.id), str(row.dedupe_key)) if row is not None else None


async def stale_ids(cutoff: datetime, *, session: AsyncSession, limit: int) -> list[int]:
    """Open invitations sent before ``cutoff`` whose inviter was not nudged yet, oldest first."""
    return list(
        await session.scalars(
            select(Invitation.id)
            .where(Invitation.status == OPEN, Invitation.stale_notified_at.is_(None))
            .where(Invitation.created_at < cutoff)
            .order_by(Invitation.created_at)
            .limit(limit)
        )
    )


async def claim_nudge(invitation_id: int, now: datetime, *, session: AsyncSession) -> bool:
    """Mark the stale invitation nudged; False when it was nudged (or closed) meanwhile."""
    claim = (
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.status == OPEN)
        .where(Invitation.stale_notified_at.is_(None))
        .values(stale_notified_at=now)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(await session.execute(claim)) == 1
