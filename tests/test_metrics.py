from __future__ import annotations

from bot.core.metrics import record_upstream
from bot.domain import Environment, State
from bot.web.metrics import render
from storage.customers import NewCustomer, add_customer
from storage.db import Database


async def test_metrics_describe_the_fleet_from_the_database(db: Database) -> None:
    async with db.transaction() as session:
        await add_customer(
            NewCustomer("12345678", "A", Environment.PRODUCTION),
            session=session,
            state=State.INVITED,
        )
    record_upstream("visma", 429)
    body, content_type = await render(db)
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'brincr_customers{state="invited"} 1.0' in text
    assert 'brincr_customers{state="healthy"} 0.0' in text
    assert 'brincr_upstream_rate_limited_total{service="visma"}' in text
    assert "brincr_outbox_backlog 0.0" in text
