"""Query functions for customers. Every function takes ``session`` by keyword; the caller owns
the transaction (``async with db.transaction() as session``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import (
    KVK_USAGE,
    Environment,
    State,
    normalize_kvk,
    normalize_tenant_id,
)
from storage.models import Customer, Incident, Invitation, StateChange
from storage.statuses import InvitationStatus

CUSTOMER_USAGE = "name a customer by KvK number (8 digits), tenant ID, or a unique part of its name"
MAX_NAME_QUERY = 200


class CustomerNotFound(UserError):
    pass


class AmbiguousCustomer(UserError):
    """More than one customer matches a name; ``candidates`` lists them (at most 10)."""

    def __init__(self, query: str, candidates: Sequence[Customer]) -> None:
        super().__init__(f"more than one customer matches `{query}`", usage=CUSTOMER_USAGE)
        self.query = query
        # Plain values: the error outlives the session (its rollback expires ORM objects).
        self.candidates = [Candidate(c.kvk, c.name, c.state) for c in candidates]


@dataclass(frozen=True)
class Candidate:
    kvk: str
    name: str
    state: str


async def get_by_kvk(kvk: str, *, session: AsyncSession) -> Customer | None:
    return await session.scalar(select(Customer).where(Customer.kvk == kvk))


async def get_by_tenant(tenant_id: str, *, session: AsyncSession) -> Customer | None:
    return await session.scalar(select(Customer).where(Customer.tenant_id == tenant_id))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def find_customer(text: str, *, session: AsyncSession) -> Customer:
    """Resolve what a person typed: a KvK number, a tenant ID, or a unique piece of a name.

    Raises CustomerNotFound or AmbiguousCustomer (both UserError, safe to show).
    """
    query = text.strip()
    if not query:
        raise UserError("name a customer", usage=CUSTOMER_USAGE)
    if len(query) > MAX_NAME_QUERY:
        raise UserError("that customer name is too long", usage=CUSTOMER_USAGE)
    if (kvk := normalize_kvk(query)) is not None:
        found = await get_by_kvk(kvk, session=session)
    elif (tenant_id := normalize_tenant_id(query)) is not None:
        found = await get_by_tenant(tenant_id, session=session)
    else:
        found = await _find_by_name(query, session=session)
    if found is None:
        usage = KVK_USAGE if query.replace(" ", "").replace(".", "").isdigit() else CUSTOMER_USAGE
        raise CustomerNotFound(f"no customer matches `{query[:40]}`", usage=usage)
    return found


async def _find_by_name(query: str, *, session: AsyncSession) -> Customer | None:
    exact = (
        await session.scalars(select(Customer).where(func.lower(Customer.name) == query.lower()))
    ).all()
    if len(exact) == 1:
        return exact[0]
    pattern = f"%{_like_escape(query.lower())}%"
    matches = (
        await session.scalars(
            select(Customer)
            .where(func.lower(Customer.name).like(pattern, escape="\\"))
            .order_by(Customer.name)
            .limit(11)
        )
    ).all()
    if len(matches) > 1:
        raise AmbiguousCustomer(query[:40], matches[:10])
    return matches[0] if matches else None


@dataclass(frozen=True)
class NewCustomer:
    kvk: str
    name: str
    environment: Environment
    tenant_id: str | None = None
    account_manager: str | None = None


async def add_customer(new: NewCustomer, *, session: AsyncSession, state: State) -> Customer:
    """Insert a customer in ``state`` and record the first state change."""
    now = utcnow()
    customer = Customer(
        kvk=new.kvk,
        name=new.name,
        environment=new.environment.value,
        tenant_id=new.tenant_id,
        account_manager=new.account_manager,
        created_at=now,
        state=state.value,
        state_since=now,
        required_scopes="",
        granted_scopes="",
        missing_scopes="",
        consecutive_failures=0,
        next_check_at=now if new.tenant_id else None,
    )
    session.add(customer)
    await session.flush()
    session.add(StateChange(customer_id=customer.id, at=now, from_state=None, to_state=state.value))
    return customer


async def change_state(
    customer: Customer,
    state: State,
    *,
    session: AsyncSession,
    reason: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Move ``customer`` to ``state`` (at ``at``, default now) and record why; False when it
    was already there."""
    if customer.state == state.value:
        return False
    now = at or utcnow()
    session.add(
        StateChange(
            customer_id=customer.id,
            at=now,
            from_state=customer.state,
            to_state=state.value,
            reason=reason,
        )
    )
    customer.state = state.value
    customer.state_since = now
    customer.state_reason = reason
    return True


async def count_by_state(*, session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Customer.state, func.count()).group_by(Customer.state))
    return {state: count for state, count in rows}


async def remove_customer(customer: Customer, *, session: AsyncSession) -> None:
    """Delete the customer, its incidents and (by cascade) everything else it owns."""
    await session.execute(delete(Incident).where(Incident.customer_id == customer.id))
    await session.delete(customer)


async def unlinked(
    environment: str | None, *, session: AsyncSession, limit: int
) -> list[tuple[Customer, datetime | None]]:
    """Customers without a tenant (in ``environment`` when given), each with its newest open
    invitation's time: newest invitation first, then those never invited, newest first."""
    newest = (
        select(Invitation.customer_id, func.max(Invitation.created_at).label("invited_at"))
        .where(Invitation.status == InvitationStatus.OPEN)
        .group_by(Invitation.customer_id)
        .subquery()
    )
    query = (
        select(Customer, newest.c.invited_at)
        .outerjoin(newest, newest.c.customer_id == Customer.id)
        .where(Customer.tenant_id.is_(None))
        .order_by(newest.c.invited_at.desc().nulls_last(), Customer.created_at.desc())
        .limit(limit)
    )
    if environment is not None:
        query = query.where(Customer.environment == environment)
    return [(customer, invited_at) for customer, invited_at in await session.execute(query)]


async def invited_without_tenant(
    environment: str | None, *, session: AsyncSession, limit: int
) -> list[str]:
    """KvK numbers of customers with an open invitation and no tenant."""
    query = (
        select(Customer.kvk)
        .join(Invitation, Invitation.customer_id == Customer.id)
        .where(Invitation.status == InvitationStatus.OPEN, Customer.tenant_id.is_(None))
        .distinct()
        .limit(limit)
    )
    if environment is not None:
        query = query.where(Customer.environment == environment)
    return list((await session.scalars(query)).all())


async def by_kvk(kvks: Sequence[str], *, session: AsyncSession) -> list[Customer]:
    """The customers with these KvK numbers (every customer when none is given), by KvK."""
    query = select(Customer).order_by(Customer.kvk)
    if kvks:
        query = query.where(Customer.kvk.in_(list(kvks)))
    return list((await session.scalars(query)).all())
