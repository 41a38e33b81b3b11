"""One customer's timeline, read from what the bot already stores: ``state_changes`` (kept
35 days, ``storage.retention``), ``incidents`` and the ``audit_log`` (whose ``target`` is the KvK).
Plain values out, newest first; the caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Customer, Incident, StateChange

MAX_PER_SOURCE = 500  # newest rows read from each table; older ones are not shown


@dataclass(frozen=True)
class Entry:
    """One line of the timeline.

    ``kind``: ``state`` (``detail`` = reason, ``old``/``new`` states), ``opened`` /
    ``resolved`` (an incident; ``downtime`` for the resolved one) or ``action`` (a person's:
    ``who`` and ``action`` from the audit log).
    """

    at: datetime
    kind: str
    new: str | None = None
    old: str | None = None
    detail: str | None = None
    who: str | None = None
    action: str | None = None
    downtime: timedelta | None = None


async def customer_timeline(customer: Customer, *, session: AsyncSession) -> list[Entry]:
    entries = [
        *await _state_changes(customer.id, session),
        *await _incidents(customer.id, session),
        *await _actions(customer.kvk, session),
    ]
    order = {"action": 0, "resolved": 1, "state": 2, "opened": 3}  # same instant: cause last
    entries.sort(key=lambda e: (e.at, -order[e.kind]), reverse=True)
    return entries


async def _state_changes(customer_id: int, session: AsyncSession) -> list[Entry]:
    rows = await session.scalars(
        select(StateChange)
        .where(StateChange.customer_id == customer_id)
        .order_by(StateChange.at.desc(), StateChange.id.desc())
        .limit(MAX_PER_SOURCE)
    )
    return [Entry(r.at, "state", new=r.to_state, old=r.from_state, detail=r.reason) for r in rows]


async def _incidents(customer_id: int, session: AsyncSession) -> list[Entry]:
    rows = await session.scalars(
        select(Incident)
        .where(Incident.customer_id == customer_id)
        .order_by(Incident.opened_at.desc())
        .limit(MAX_PER_SOURCE)
    )
    entries = []
    for incident in rows:
        entries.append(Entry(incident.opened_at, "opened", new=incident.state,
                             detail=incident.reason))  # fmt: skip
        if incident.resolved_at is not None:
            down = incident.resolved_at - incident.opened_at
            entries.append(Entry(incident.resolved_at, "resolved", downtime=down))
    return entries


async def _actions(kvk: str, session: AsyncSession) -> list[Entry]:
    rows = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.target == kvk)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(MAX_PER_SOURCE)
    )
    return [Entry(r.at, "action", who=r.user_id, action=r.action, detail=r.detail) for r in rows]
