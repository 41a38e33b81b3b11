"""The audit log: who changed what, when. Written in the transaction of the change itself."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from storage.models import AuditEntry


def record(
    session: AsyncSession,
    *,
    user_id: str,
    action: str,
    target: str | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """Add one audit entry (never put an invitation code or secret in ``detail``)."""
    entry = AuditEntry(at=utcnow(), user_id=user_id, action=action, target=target, detail=detail)
    session.add(entry)
    return entry


async def recent(*, session: AsyncSession, limit: int = 50) -> Sequence[AuditEntry]:
    rows = await session.scalars(
        select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    )
    return rows.all()
