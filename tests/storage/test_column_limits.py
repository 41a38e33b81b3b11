"""Values that come from outside are cut or refused at the edge, never a database error:
here, an upstream error code longer than its ``String(100)`` column (PostgreSQL enforces it)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from storage.models import CheckResult, Customer
from tests.harness import start_bot


async def test_an_upstream_error_code_longer_than_its_column_is_recorded_cut(
    database_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(database_url, slack, sim)
    try:
        sim.set_options(unknown_tenant_error="invalid_tenant_" + "x" * 185)
        customer_id = await bot.add_customer("12345678", "Klant", tenant_id=str(uuid.uuid4()),
                                             approve=None)  # fmt: skip
        await bot.runtime.bot.checker.check_customer(customer_id)
        async with bot.runtime.bot.db.transaction() as session:
            result = await session.scalar(select(CheckResult))
            customer = await session.get(Customer, customer_id)
        assert result is not None and result.error_code is not None
        assert result.error_code == ("invalid_tenant_" + "x" * 185)[:100]
        assert customer is not None and customer.last_check_at is not None
    finally:
        await bot.close()
