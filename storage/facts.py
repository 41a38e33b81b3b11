"""What a customer *is* to the people who look at it, read in one place.

Every surface that shows a customer — ``/brincr status``, ``list``, the App Home, the HTTP API
(list and detail), ``brincr-bot check --json``, the weekly digest — reads these facts through
:func:`facts_for` / :func:`facts_of`, and the fleet's counts per state through
:func:`counts_by_state`, so no two surfaces can disagree about the same customer.
``customers export --with-state`` streams the same customer columns
(``storage.customers.export_rows``: state, scopes, since, last check) without the incident
and the last result, which a CSV does not show, so a fleet of 50,000 is never held at once.

The open incident is the customer's own or, when it is counted in a grouped incident
(``bot.alerts.grouping``), that group's.

Every function takes ``session`` by keyword; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import CheckResult, Customer, Incident, IncidentMember

CHUNK = 2000  # customers per IN list: far below SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class CustomerFacts:
    customer: Customer
    incident: Incident | None  # its own open incident, else the open group it is counted in
    last: CheckResult | None  # the last check's result (None: never checked, or pruned)

    @property
    def granted_scopes(self) -> list[str]:
        return self.customer.granted_scopes.split()

    @property
    def missing_scopes(self) -> list[str]:
        return self.customer.missing_scopes.split()

    @property
    def rollout_missing_scopes(self) -> list[str]:
        """Rollout scopes not switched ON yet, as last asked (tracked, never alerted)."""
        return (self.customer.rollout_missing_scopes or "").split()


async def facts_for(customer: Customer, *, session: AsyncSession) -> CustomerFacts:
    """The facts of one customer."""
    return (await facts_of([customer], session=session))[0]


async def facts_of(customers: Sequence[Customer], *, session: AsyncSession) -> list[CustomerFacts]:
    """The facts of customers, in their order: three queries per ``CHUNK`` customers."""
    incidents: dict[int, Incident] = {}
    results: dict[int, CheckResult] = {}
    for start in range(0, len(customers), CHUNK):
        chunk = customers[start : start + CHUNK]
        incidents.update(await _open_incidents([c.id for c in chunk], session=session))
        result_ids = [c.last_result_id for c in chunk if c.last_result_id is not None]
        if result_ids:
            found = await session.scalars(select(CheckResult).where(CheckResult.id.in_(result_ids)))
            results.update((r.id, r) for r in found)
    return [
        CustomerFacts(
            c,
            incidents.get(c.id),
            results.get(c.last_result_id) if c.last_result_id is not None else None,
        )
        for c in customers
    ]


async def _open_incidents(ids: list[int], *, session: AsyncSession) -> dict[int, Incident]:
    """Each customer's open incident: its own wins over the group it is counted in."""
    found: dict[int, Incident] = {}
    grouped = await session.execute(
        select(IncidentMember.customer_id, Incident)
        .join(Incident, Incident.id == IncidentMember.incident_id)
        .where(IncidentMember.customer_id.in_(ids), Incident.resolved_at.is_(None))
    )
    for customer_id, incident in grouped:
        found[customer_id] = incident
    own = await session.scalars(
        select(Incident).where(Incident.customer_id.in_(ids), Incident.resolved_at.is_(None))
    )
    for incident in own:
        if incident.customer_id is not None:
            found[incident.customer_id] = incident
    return found


async def counts_by_state(*, session: AsyncSession) -> dict[str, int]:
    """How many customers are in each state (``ix_customers_state``); absent states: none."""
    rows = await session.execute(select(Customer.state, func.count()).group_by(Customer.state))
    return {str(state): int(n) for state, n in rows}


async def rollout_pending(*, session: AsyncSession) -> list[Customer]:
    """Customers known not to have switched the rollout scopes ON yet, by name."""
    rows = await session.scalars(
        select(Customer)
        .where(Customer.rollout_missing_scopes != "")
        .order_by(Customer.name, Customer.kvk)
    )
    return list(rows)
