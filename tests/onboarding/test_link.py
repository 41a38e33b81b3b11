"""``/brincr link <kvk> <tenant-id>`` end to end: signed slash commands through the real Bolt
app, the Visma/Brincr stand-in answering the first check, real SQLite."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import func, select

from bot.domain import Environment, State
from storage.customers import NewCustomer, add_customer
from storage.models import AuditEntry, Customer, Invitation, StateChange
from tests.harness import ADMIN, SCOPES, SUPPORT, BotHarness, text_of

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
CODE = "INVITE-CODE-7f3a9q"


async def invited_customer(bot: BotHarness, kvk: str, name: str) -> int:
    """A customer with an open invitation and no tenant yet."""
    async with bot.runtime.bot.db.transaction() as session:
        customer = await add_customer(
            NewCustomer(kvk, name, Environment.PRODUCTION, None, ADMIN),
            session=session,
            state=State.INVITED,
        )
        session.add(
            Invitation(customer_id=customer.id, code=CODE, language="nl", invited_by=ADMIN,
                       created_at=customer.created_at, status="open")
        )  # fmt: skip
        return customer.id


async def customer_row(bot: BotHarness, kvk: str) -> Customer:
    async with bot.runtime.bot.db.transaction() as session:
        customer = await session.scalar(select(Customer).where(Customer.kvk == kvk))
    assert customer is not None
    return customer


async def counts(bot: BotHarness) -> tuple[int, int]:
    """(audit entries, state changes)"""
    async with bot.runtime.bot.db.transaction() as session:
        audits = await session.scalar(select(func.count()).select_from(AuditEntry))
        changes = await session.scalar(select(func.count()).select_from(StateChange))
    return int(audits or 0), int(changes or 0)


async def test_link_ties_the_tenant_checks_at_once_and_replies_with_the_status(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await invited_customer(bot, "12345678", "Bouwbedrijf De Vries")
    # From here on (setup's INSERT is logged with its parameters by aiosqlite at DEBUG).
    caplog.set_level(logging.DEBUG)
    bot.sim.approve(TENANT, "production", list(SCOPES))
    before = bot.sim.counters.token_requests()

    response, key = await bot.command(f"link 1234.5678 {TENANT.upper()}", user=ADMIN)
    assert response.status_code == 200
    reply = await bot.reply(key)
    text = text_of(reply)
    assert reply["response_type"] == "ephemeral"
    assert f"Tenant `{TENANT}` is linked to *Bouwbedrijf De Vries*" in text
    assert "healthy" in text and "the Brincr API answered normally (HTTP 200)" in text
    assert bot.sim.counters.token_requests() == before + 1

    customer = await customer_row(bot, "12345678")
    assert (customer.tenant_id, customer.state) == (TENANT, State.HEALTHY)
    async with bot.runtime.bot.db.transaction() as session:
        changes = (await session.scalars(select(StateChange).order_by(StateChange.id))).all()
        (entry,) = (await session.scalars(select(AuditEntry))).all()
    assert [(c.to_state, c.reason) for c in changes[1:]] == [
        (State.PENDING, f"linked by {ADMIN}"),
        (State.HEALTHY, None),
    ]
    assert (entry.user_id, entry.action, entry.target) == (ADMIN, "link", "12345678")
    assert CODE not in caplog.text


async def test_linking_the_same_tenant_again_is_harmless(bot: BotHarness) -> None:
    await invited_customer(bot, "12345678", "Bouwbedrijf")
    bot.sim.approve(TENANT, "production", list(SCOPES))
    _, key = await bot.command(f"link 12345678 {TENANT}", user=ADMIN)
    assert "healthy" in text_of(await bot.reply(key))
    before = await counts(bot)

    _, key = await bot.command(f"link 12345678 {TENANT}", user=ADMIN)
    assert "healthy" in text_of(await bot.reply(key))
    assert await counts(bot) == before  # no second audit entry, no detour through pending
    assert (await customer_row(bot, "12345678")).state == State.HEALTHY


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        (f"link 1234567 {TENANT}", ADMIN, "is not a KvK number"),
        ("link 12345678 not-a-tenant", ADMIN, "is not a tenant ID"),
        ("link 12345678", ADMIN, "Which customer, and which tenant?"),
        ("link", ADMIN, "Which customer, and which tenant?"),
        (f"link 87654321 {TENANT}", ADMIN, "No customer with KvK 87654321"),
        (f"link 12345678 {TENANT}", SUPPORT, "Only bot admins may link tenants"),
    ],
)
async def test_bad_link_input_gets_an_ephemeral_answer_and_stores_nothing(
    bot: BotHarness, text: str, user: str, expected: str
) -> None:
    await invited_customer(bot, "12345678", "Bouwbedrijf")
    bot.sim.approve(TENANT, "production", list(SCOPES))
    before = await counts(bot)
    _, key = await bot.command(text, user=user)
    reply = await bot.reply(key)
    assert reply["response_type"] == "ephemeral"
    assert expected in text_of(reply)
    assert await counts(bot) == before
    customer = await customer_row(bot, "12345678")
    assert (customer.tenant_id, customer.state) == (None, State.INVITED)
    assert bot.sim.counters.token_requests() == 0


async def test_unknown_customer_is_told_to_send_an_invitation_first(bot: BotHarness) -> None:
    _, key = await bot.command(f"link 87654321 {TENANT}", user=ADMIN)
    assert "send an invitation first with `/brincr invite`" in text_of(await bot.reply(key))
    async with bot.runtime.bot.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 0


async def test_a_tenant_of_another_customer_is_refused_naming_it_escaped(bot: BotHarness) -> None:
    await bot.add_customer("11111111", "<!channel> & Zonen", tenant_id=TENANT)
    await invited_customer(bot, "12345678", "Bouwbedrijf")
    before = await counts(bot)
    _, key = await bot.command(f"link 12345678 {TENANT}", user=ADMIN)
    text = text_of(await bot.reply(key))
    assert "already linked to *&lt;!channel&gt; &amp; Zonen* (KvK 11111111)" in text
    assert "<!channel>" not in text
    assert await counts(bot) == before
    assert (await customer_row(bot, "12345678")).tenant_id is None


async def test_relinking_to_a_new_tenant_starts_afresh_and_is_audited(bot: BotHarness) -> None:
    old = str(uuid.uuid4())
    await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=old, approve=None)
    await bot.runtime.bot.checker.check_customer(1)
    assert (await customer_row(bot, "12345678")).state == State.REVOKED
    bot.sim.approve(TENANT, "production", list(SCOPES))
    _, key = await bot.command(f"link 12345678 {TENANT}", user=ADMIN)
    assert "healthy" in text_of(await bot.reply(key))
    customer = await customer_row(bot, "12345678")
    assert (customer.tenant_id, customer.consecutive_failures) == (TENANT, 0)
    async with bot.runtime.bot.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry))
    assert entry is not None and entry.detail == f"tenant {TENANT} (was {old})"
