"""``fleet_page`` reads the list one state at a time from an index (the cost curve, #21): the
pages it returns are the ones a sort of the whole fleet by severity, then time in that state,
then name would give, for every filter and for pages that span states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.clock import utcnow
from bot.domain import STATE_SEVERITY, Environment, State
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import Customer
from storage.reads import fleet_page

STATES = [State.HEALTHY] * 9 + [State.REVOKED] * 3 + [State.FAILING] * 4 + [State.PENDING] * 5
SINCE = datetime(2026, 11, 1, tzinfo=UTC)


async def _fleet(db: Database) -> list[Customer]:
    async with db.transaction() as session:
        customers = []
        for i, state in enumerate(STATES):
            customer = await add_customer(
                NewCustomer(f"{20_000_000 + i}", f"Klant {i % 7} {i}", Environment.PRODUCTION),
                session=session, state=state,
            )  # fmt: skip
            customer.state_since = SINCE + timedelta(hours=(i * 5) % 4)  # ties: name decides
            customers.append(customer)
        customers[2].snoozed_until = utcnow() + timedelta(hours=1)
        customers[3].snoozed_until = utcnow() - timedelta(hours=1)  # snoozed, ended
    return customers


def _expected(customers: list[Customer], states: set[str] | None) -> list[str]:
    rank = {s.value: r for s, r in STATE_SEVERITY.items()}
    chosen = [c for c in customers if states is None or c.state in states]
    chosen.sort(key=lambda c: (rank[c.state], c.state_since, c.name))
    return [c.kvk for c in chosen]


@pytest.mark.parametrize(
    "states", [None, (State.REVOKED, State.FAILING, State.UNKNOWN), (State.PENDING,)]
)
async def test_every_page_is_the_slice_of_the_fleet_sorted_worst_first(
    db: Database, states: tuple[State, ...] | None
) -> None:
    customers = await _fleet(db)
    want = _expected(customers, {s.value for s in states} if states else None)
    for limit in (1, 4, 20):
        for offset in range(0, len(STATES) + 2):
            async with db.transaction() as session:
                page = await fleet_page(
                    states, session=session, now=utcnow(), offset=offset, limit=limit
                )
            assert [c.kvk for c in page.customers] == want[offset : offset + limit]
            assert page.total == len(want)
            assert page.snoozed == 1
            assert page.counts == {"healthy": 9, "revoked": 3, "failing": 4, "pending": 5}
