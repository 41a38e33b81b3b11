"""Read-side queries for reporting: the read-only HTTP API (bot/web/api.py) and the weekly digest
(bot/fleet/digest.py). Stored state only: nothing here triggers a check. Every function takes
``session`` by keyword; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import upsert_into
from storage.facts import CustomerFacts, facts_for, facts_of
from storage.models import (
    Customer,
    Incident,
    Invitation,
    KeyValue,
    StateChange,
)


@dataclass(frozen=True)
class CustomerPage:
    customers: list[CustomerFacts]
    total: int


async def customers_page(
    *,
    session: AsyncSession,
    states: Sequence[str] = (),
    environments: Sequence[str] = (),
    offset: int,
    limit: int,
) -> CustomerPage:
    """Customers by KvK, filtered by state and environment (empty: any)."""
    where = []
    if states:
        where.append(Customer.state.in_(list(states)))
    if environments:
        where.append(Customer.environment.in_(list(environments)))
    total = await session.scalar(select(func.count()).select_from(Customer).where(*where))
    rows = await session.scalars(
        select(Customer).where(*where).order_by(Customer.kvk).offset(offset).limit(limit)
    )
    return CustomerPage(await facts_of(list(rows), session=session), int(total or 0))


async def customer_detail(kvk: str, *, session: AsyncSession) -> CustomerFacts | None:
    customer = await session.scalar(select(Customer).where(Customer.kvk == kvk))
    if customer is None:
        return None
    return await facts_for(customer, session=session)


# --- the weekly digest (bot/fleet/digest.py) --------------------------------------------------


async def counts_at(when: datetime, *, session: AsyncSession) -> dict[str, int]:
    """Customers per state at ``when``, from today's states and the changes since (each
    change records the state it left). Exact while the changes since ``when`` are kept:
    state changes live 35 days, a digest looks back 7."""
    current = {cid: state for cid, state in await session.execute(
        select(Customer.id, Customer.state))}  # fmt: skip
    changes = await session.execute(
        select(StateChange.customer_id, StateChange.from_state)
        .where(StateChange.at > when)
        .order_by(StateChange.customer_id, StateChange.at, StateChange.id)
    )
    earliest: dict[int, str | None] = {}
    for customer_id, from_state in changes:
        earliest.setdefault(customer_id, from_state)
    counts: dict[str, int] = {}
    for customer_id, state in current.items():
        then = earliest.get(customer_id, state)  # None: the customer did not exist yet
        if then is not None:
            counts[then] = counts.get(then, 0) + 1
    return counts


async def customers_in(states: Sequence[str], *, session: AsyncSession) -> list[Customer]:
    """Customers in ``states``, longest in that state first."""
    rows = await session.scalars(
        select(Customer).where(Customer.state.in_(list(states)))
        .order_by(Customer.state_since, Customer.kvk)
    )  # fmt: skip
    return list(rows)


async def waiting_invitations(
    before: datetime, *, session: AsyncSession
) -> list[tuple[Invitation, Customer]]:
    """Open invitations sent before ``before``, oldest first, with their customers."""
    rows = await session.execute(
        select(Invitation, Customer)
        .join(Customer, Customer.id == Invitation.customer_id)
        .where(Invitation.status == "open", Invitation.created_at < before)
        .order_by(Invitation.created_at)
    )
    return [(invitation, customer) for invitation, customer in rows]


async def incidents_since(
    since: datetime, *, session: AsyncSession
) -> list[tuple[Incident, Customer | None]]:
    """Incidents open at some moment after ``since`` (opened since, or still open then)."""
    rows = await session.execute(
        select(Incident, Customer)
        .outerjoin(Customer, Customer.id == Incident.customer_id)
        .where(or_(Incident.resolved_at.is_(None), Incident.resolved_at > since))
        .order_by(Incident.opened_at)
    )
    return [(incident, customer) for incident, customer in rows]


async def claim_key(key: str, value: str, *, session: AsyncSession, now: datetime) -> bool:
    """Insert the ``kv`` row ``key`` unless it exists; True for the one caller that did.

    ``INSERT … ON CONFLICT DO NOTHING``: on PostgreSQL a second replica's insert waits for
    the first one's transaction and then inserts nothing, so exactly one claim succeeds and
    neither transaction is aborted by a unique violation.
    """
    statement = (
        upsert_into(cast(Table, KeyValue.__table__), session)
        .values(key=key, value=value, updated_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(KeyValue.key)  # the driver's rowcount for this insert is not reliable
    )
    return (await session.execute(statement)).scalar() is not None
