"""One customer, one answer: every surface reads a customer's facts through storage/facts.py,
so a member of a grouped incident shows that incident in Slack and in the API alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from storage.models import Customer, Incident
from tests.harness import BotHarness, start_bot, text_of

TOKEN = "api-token-surfaces-0123456789"


@pytest.fixture
async def api_bot(sqlite_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(sqlite_url, slack, sim, api_tokens=TOKEN)
    yield harness
    await harness.close()


async def test_a_grouped_incidents_member_shows_it_in_status_the_api_list_and_detail(
    api_bot: BotHarness,
) -> None:
    bot = api_bot
    ids = [await bot.add_customer(f"{51000000 + i}", f"Groep {i:02}") for i in range(6)]
    await bot.runtime.bot.checker.check_many(ids)
    async with bot.runtime.bot.db.transaction() as session:
        tenants = list(
            await session.scalars(select(Customer.tenant_id).where(Customer.id.in_(ids)))
        )
    for tenant in tenants:
        bot.sim.revoke(str(tenant), ["brincr:order"])
    await bot.runtime.bot.checker.check_many(ids)
    while await bot.runtime.bot.outbox.deliver_due():
        pass
    async with bot.runtime.bot.db.transaction() as session:
        group = await session.scalar(select(Incident).where(Incident.kind == "group"))
        own = await session.scalar(select(Incident).where(Incident.customer_id.in_(ids)))
    assert group is not None and group.resolved_at is None
    assert own is None  # the members have no incident of their own: only the group's

    _, key = await bot.command("status 51000003")
    status = text_of(await bot.reply(key))
    assert "Part of a grouped incident" in status and "6 customers" in status

    headers = {"Authorization": f"Bearer {TOKEN}"}
    detail = (await bot.http.get(f"{bot.url}/api/v1/customers/51000003", headers=headers)).json()
    listing = (await bot.http.get(f"{bot.url}/api/v1/customers", headers=headers)).json()
    listed = next(c for c in listing["customers"] if c["kvk"] == "51000003")
    assert detail["open_incident"] is not None and detail["open_incident"]["id"] == group.id
    assert listed["open_incident"] == detail["open_incident"]
    assert listed["state"] == detail["state"] == "scopes_missing"
    assert "`scopes_missing`" in status or "scopes_missing" in status
    assert listed["missing_scopes"] == detail["missing_scopes"] == ["brincr:order"]
