"""The audit log: who changed what, when. Written in the transaction of the change itself."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, text
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


# pg_advisory_xact_lock key for budgets counted from the audit log ("brcb").
_BUDGET_LOCK = 0x62726362


async def lock_budget(session: AsyncSession) -> None:
    """Serialise count-then-record of a budget across replicas until the transaction ends.

    PostgreSQL: a transaction-level advisory lock. SQLite (one replica) serialises writers
    itself once the transaction has written, so callers write before they count.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BUDGET_LOCK})


async def times(
    action: str,
    since: datetime,
    *,
    session: AsyncSession,
    user_id: str | None = None,
    target: str | None = None,
    detail: str | None = None,
    limit: int,
) -> list[datetime]:
    """When ``action`` was recorded since ``since`` (by ``user_id``, on ``target``, with
    ``detail`` when given), newest first, at most ``limit`` (the index on ``at`` keeps this
    to the window's rows)."""
    query = select(AuditEntry.at).where(AuditEntry.action == action, AuditEntry.at > since)
    for column, value in (
        (AuditEntry.user_id, user_id),
        (AuditEntry.target, target),
        (AuditEntry.detail, detail),
    ):
        if value is not None:
            query = query.where(column == value)
    rows = await session.scalars(query.order_by(AuditEntry.at.desc()).limit(limit))
    return list(rows.all())
