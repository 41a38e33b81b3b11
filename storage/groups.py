"""Query functions for grouped incidents: an :class:`~storage.models.Incident` of kind
``group`` and its customers, :class:`~storage.models.IncidentMember` rows (keyword-only
``session``; the caller owns the transaction). What a cause is and when customers form a
group is ``bot.alerts.grouping``'s; here a cause is its environment, state and signature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import State
from storage.models import CheckResult, Customer, Incident, IncidentMember
from storage.statuses import IncidentKind


@dataclass(frozen=True)
class Member:
    name: str
    kvk: str


def _with_cause(state: str, signature: str) -> ColumnElement[bool]:
    """Customers whose cause is ``signature``: the missing scopes, or the error code that
    starts the reason."""
    if state == State.SCOPES_MISSING:
        return Customer.missing_scopes == signature
    if not signature:
        return or_(Customer.state_reason.is_(None), Customer.state_reason == "")
    prefix = signature + ":"
    return or_(
        Customer.state_reason == signature,
        func.substr(Customer.state_reason, 1, len(prefix)) == prefix,
    )


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


async def group_of(customer_id: int, *, session: AsyncSession) -> Incident | None:
    """The open group the customer is counted in."""
    return await session.scalar(
        select(Incident)
        .join(IncidentMember, IncidentMember.incident_id == Incident.id)
        .where(IncidentMember.customer_id == customer_id, Incident.resolved_at.is_(None))
    )


async def open_group_id_of(customer_id: int, *, session: AsyncSession) -> int | None:
    group = await group_of(customer_id, session=session)
    return group.id if group is not None else None


def _failing_below_threshold(signature: str) -> ColumnElement[bool]:
    """Customers whose latest check failed with the error code ``signature`` while their
    state is still healthy (below their own FAILURE_THRESHOLD)."""
    failed_so = (
        select(CheckResult.id)
        .where(CheckResult.id == Customer.last_result_id, CheckResult.error_code == signature)
        .exists()
    )
    return and_(Customer.state == State.HEALTHY, Customer.consecutive_failures > 0, failed_so)


async def peers(
    environment: str, state: str, signature: str, now: datetime, *, session: AsyncSession
) -> list[int]:
    """Customers with this cause that no incident covers yet and that are not snoozed."""
    rows = await session.scalars(
        select(Customer.id)
        .where(Customer.environment == environment, Customer.state == state)
        .where(_with_cause(state, signature), ~_in_open_incident())
        .where(or_(Customer.snoozed_until.is_(None), Customer.snoozed_until <= now))
        .order_by(Customer.id)
    )
    return list(rows)


async def failing_soon(
    environment: str, signature: str, now: datetime, *, session: AsyncSession
) -> int:
    """How many customers of ``environment`` failed their latest check with the error code
    ``signature`` but are still below their own failure threshold (not snoozed): they count
    towards a ``failing`` group, and join it when they reach the threshold."""
    count = await session.scalar(
        select(func.count())
        .select_from(Customer)
        .where(Customer.environment == environment, _failing_below_threshold(signature))
        .where(or_(Customer.snoozed_until.is_(None), Customer.snoozed_until <= now))
    )
    return int(count or 0)


async def add_members(
    incident: Incident, customer_ids: Sequence[int], now: datetime, *, session: AsyncSession
) -> None:
    for customer_id in customer_ids:
        session.add(IncidentMember(incident_id=incident.id, customer_id=customer_id, joined_at=now))
    await session.flush()
    incident.affected_count = await member_count(incident.id, session=session)


async def remove_member(incident: Incident, customer_id: int, *, session: AsyncSession) -> int:
    """Take the customer out of the group; how many customers are left in it."""
    await session.execute(
        delete(IncidentMember).where(
            IncidentMember.incident_id == incident.id, IncidentMember.customer_id == customer_id
        )
    )
    left = await member_count(incident.id, session=session)
    await session.execute(
        update(Incident)
        .where(Incident.id == incident.id)
        .values(affected_count=left)
        .execution_options(synchronize_session=False)
    )
    incident.affected_count = left
    return left


async def release_members(incident_id: int, *, session: AsyncSession) -> None:
    """Let every customer of the group go (a group resolved by hand)."""
    await session.execute(delete(IncidentMember).where(IncidentMember.incident_id == incident_id))


async def member_count(incident_id: int, *, session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(IncidentMember)
        .where(IncidentMember.incident_id == incident_id)
    )
    return int(count or 0)


async def members(
    incident_id: int, *, session: AsyncSession, limit: int | None = None
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


def _singles(environment: str, state: str, signature: str) -> Select[Incident, Customer]:
    return (
        select(Incident, Customer)
        .join(Customer, Customer.id == Incident.customer_id)
        .where(Incident.kind == IncidentKind.CUSTOMER, Incident.resolved_at.is_(None))
        .where(Customer.environment == environment, Customer.state == state)
        .where(_with_cause(state, signature))
    )


async def count_singles_with_cause(
    environment: str, state: str, signature: str, *, session: AsyncSession
) -> int:
    """How many open single incidents have this cause."""
    query = _singles(environment, state, signature).with_only_columns(func.count(Incident.id))
    return int(await session.scalar(query) or 0)


async def singles_with_cause(
    environment: str, state: str, signature: str, *, session: AsyncSession
) -> list[tuple[Incident, Customer]]:
    """Open single incidents whose customer is broken by this cause (to fold into its group)."""
    rows = await session.execute(_singles(environment, state, signature).order_by(Incident.id))
    return [(incident, customer) for incident, customer in rows]
