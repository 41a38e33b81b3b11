"""Read-side queries for reporting: the read-only HTTP API (bot/api.py) and the weekly digest
(bot/digest.py). Stored state only: nothing here triggers a check. Every function takes
``session`` by keyword; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CheckResult, Customer, Incident
from storage.reads import open_incident


@dataclass(frozen=True)
class CustomerPage:
    customers: list[Customer]
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
    return CustomerPage(list(rows), int(total or 0))


@dataclass(frozen=True)
class CustomerDetail:
    customer: Customer
    last: CheckResult | None
    incident: Incident | None


async def customer_detail(kvk: str, *, session: AsyncSession) -> CustomerDetail | None:
    customer = await session.scalar(select(Customer).where(Customer.kvk == kvk))
    if customer is None:
        return None
    last = None
    if customer.last_result_id is not None:
        last = await session.get(CheckResult, customer.last_result_id)
    return CustomerDetail(customer, last, await open_incident(customer.id, session=session))


async def open_incidents_for(
    customer_ids: Sequence[int], *, session: AsyncSession
) -> dict[int, Incident]:
    """Open incidents by customer, for a page of customers (one query)."""
    if not customer_ids:
        return {}
    rows = await session.scalars(
        select(Incident).where(
            Incident.customer_id.in_(list(customer_ids)), Incident.resolved_at.is_(None)
        )
    )
    return {i.customer_id: i for i in rows if i.customer_id is not None}
