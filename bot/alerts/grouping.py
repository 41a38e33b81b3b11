"""One incident for one cause: when many customers of an environment are broken in the same
way at once (a scope added to ``BRINCR_SCOPES``, an app change at Visma), one grouped
incident names the cause and the count instead of one alert per customer.

**The cause** of a broken customer is its state and its reason: for ``scopes_missing`` the
exact set of missing scopes, for ``revoked`` and ``failing`` the error code (the part of the
reason before the first ``:``).

**The threshold** that separates "a customer" from "a rollout": at least
:data:`GROUP_MIN` (5) customers of one environment in the same state for the same cause,
none of them alerted on its own yet (not snoozed, not in an open incident or group). Below
that, separate alerts are no storm (a percentage of the environment would group 2 or 3
customers of a small one, which reads worse than their own alerts); above it, one message
replaces N. Customers break together within one check interval when the cause is shared (a
rollout reaches everybody's next check), and the sweep records its checks in batches before
alerting, so a rollout's first batch already forms the group: at most the customers checked
before the threshold is reached alert on their own.

A group is an :class:`~storage.models.Incident` with ``kind="group"``; its customers are
:class:`~storage.models.IncidentMember` rows. Customers breaking the same way later join it
(the message is updated in place); a recovering customer leaves it; the last one leaving
resolves it. The message lists up to :data:`SHOWN` customers, the complete list goes in its
thread when it opens. Acknowledge, Snooze and Resolve act on the group. Each customer's own
state stays its own (``status``), with a pointer to the group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import State
from storage.db import affected_rows
from storage.models import Customer, Incident, IncidentMember

GROUP_MIN = 5
SHOWN = 25  # customers listed in the message; the thread has them all
THREAD_CHUNK = 50  # customers per thread reply


def group_threshold() -> int:
    """How many customers with one cause make a group (see the module docstring)."""
    return GROUP_MIN


@dataclass(frozen=True)
class Cause:
    environment: str
    state: str
    signature: str  # the missing scopes, or the error code

    @classmethod
    def of(cls, customer: Customer) -> Cause:
        if customer.state == State.SCOPES_MISSING:
            return cls(customer.environment, customer.state, customer.missing_scopes)
        code = (customer.state_reason or "").split(":", 1)[0].strip()
        return cls(customer.environment, customer.state, code)

    @property
    def key(self) -> str:
        """The group's ``open_key`` / ``upstream_key`` (at most 64 characters)."""
        digest = hashlib.sha256(self.signature.encode()).hexdigest()[:12]
        return f"group:{self.environment}:{self.state}:{digest}"

    @property
    def plain(self) -> str:
        """The cause in a few words (plain text: the renderer escapes it)."""
        if self.state == State.SCOPES_MISSING:
            return "missing scopes: " + ", ".join(self.signature.split())
        return self.signature or "no details"

    def matches(self) -> ColumnElement[bool]:
        """Customers with this cause (SQL)."""
        if self.state == State.SCOPES_MISSING:
            return Customer.missing_scopes == self.signature
        if not self.signature:
            return or_(Customer.state_reason.is_(None), Customer.state_reason == "")
        prefix = self.signature + ":"
        return or_(
            Customer.state_reason == self.signature,
            func.substr(Customer.state_reason, 1, len(prefix)) == prefix,
        )


@dataclass(frozen=True)
class Member:
    name: str
    kvk: str


def _in_open_incident() -> ColumnElement[bool]:
    own = (
        select(Incident.id)
        .where(Incident.customer_id == Customer.id, Incident.resolved_at.is_(None))
        .exists()
    )
    grouped = (
        select(IncidentMember.customer_id)
        .join(Incident, Incident.id == IncidentMember.incident_id)
        .where(IncidentMember.customer_id == Customer.id, Incident.resolved_at.is_(None))
        .exists()
    )
    return or_(own, grouped)


async def group_of(session: AsyncSession, customer_id: int) -> Incident | None:
    """The open group the customer is counted in."""
    return await session.scalar(
        select(Incident)
        .join(IncidentMember, IncidentMember.incident_id == Incident.id)
        .where(IncidentMember.customer_id == customer_id, Incident.resolved_at.is_(None))
    )


async def open_group(session: AsyncSession, cause: Cause) -> Incident | None:
    return await session.scalar(select(Incident).where(Incident.open_key == cause.key))


async def peers(session: AsyncSession, cause: Cause, now: datetime) -> list[int]:
    """Customers with ``cause`` that no incident covers yet and that are not snoozed."""
    rows = await session.scalars(
        select(Customer.id)
        .where(Customer.environment == cause.environment, Customer.state == cause.state)
        .where(cause.matches(), ~_in_open_incident())
        .where(or_(Customer.snoozed_until.is_(None), Customer.snoozed_until <= now))
        .order_by(Customer.id)
    )
    return list(rows)


async def add_members(
    session: AsyncSession, incident: Incident, customer_ids: Sequence[int], now: datetime
) -> None:
    for customer_id in customer_ids:
        session.add(IncidentMember(incident_id=incident.id, customer_id=customer_id, joined_at=now))
    await session.flush()
    incident.affected_count = await member_count(session, incident.id)


async def remove_member(session: AsyncSession, incident: Incident, customer_id: int) -> int:
    """Take the customer out of the group; how many customers are left in it."""
    await session.execute(
        delete(IncidentMember).where(
            IncidentMember.incident_id == incident.id, IncidentMember.customer_id == customer_id
        )
    )
    left = await member_count(session, incident.id)
    await session.execute(
        update(Incident)
        .where(Incident.id == incident.id)
        .values(affected_count=left)
        .execution_options(synchronize_session=False)
    )
    incident.affected_count = left
    return left


async def claim_resolve(session: AsyncSession, incident: Incident, now: datetime) -> bool:
    """Close the group once (two replicas may see its last customers recover)."""
    done = await session.execute(
        update(Incident)
        .where(Incident.id == incident.id, Incident.resolved_at.is_(None))
        .values(resolved_at=now, open_key=None)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(done) == 1


async def member_count(session: AsyncSession, incident_id: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(IncidentMember)
        .where(IncidentMember.incident_id == incident_id)
    )
    return int(count or 0)


async def members(
    session: AsyncSession, incident_id: int, limit: int | None = None
) -> list[Member]:
    query = (
        select(Customer.name, Customer.kvk)
        .join(IncidentMember, IncidentMember.customer_id == Customer.id)
        .where(IncidentMember.incident_id == incident_id)
        .order_by(Customer.name, Customer.kvk)
    )
    if limit is not None:
        query = query.limit(limit)
    return [Member(name, kvk) for name, kvk in await session.execute(query)]
