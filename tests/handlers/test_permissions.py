"""Who may change things, through the real app with signed requests: every changing button
refuses a non-admin with a reason and changes nothing; an admin's press works and is in the
audit log. Checks started by people are open to everyone, throttled per customer."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.core.clock import utcnow
from bot.domain import Environment, State
from bot.onboarding.values import TenantApproval
from bot.slack.ids import Action
from storage.customers import NewCustomer, add_customer
from storage.models import AuditEntry, Customer, Incident, Invitation
from tests.harness import ADMIN, ALERTS, SUPPORT, BotHarness, eventually, text_of


async def audit_actions(bot: BotHarness) -> list[tuple[str, str, str | None]]:
    async with bot.runtime.bot.db.transaction() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(r.user_id, r.action, r.target) for r in rows]


async def incident_of(bot: BotHarness) -> Incident:
    async with bot.runtime.bot.db.transaction() as session:
        incident = await session.scalar(select(Incident))
    assert incident is not None
    return incident


async def customers(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


async def test_a_non_admin_pressing_each_changing_button_is_refused_and_nothing_changes(
    bot: BotHarness,
) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    cid = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    await bot.add_customer("23456789", "Tweede Klant")
    async with bot.runtime.bot.db.transaction() as session:  # a customer the picker offers
        new = NewCustomer("34567890", "Nog Niet Gekoppeld", Environment.PRODUCTION, None, ADMIN)
        await add_customer(new, session=session, state=State.INVITED)
    bot.sim.remove(tenant)
    await bot.runtime.bot.checker.check_customer(cid)
    incident = await incident_of(bot)
    async with bot.runtime.bot.db.transaction() as session:
        invitation = Invitation(customer_id=cid, code="INV-1", language="en", invited_by=ADMIN,
                                created_at=utcnow(), status="open")  # fmt: skip
        session.add(invitation)
    approval = TenantApproval("00000000-0000-4000-8000-00000000000a", "production").encode()
    presses = [
        (Action.ACKNOWLEDGE, str(incident.id), "acknowledge incidents", False),
        (Action.SNOOZE, f"{incident.id}:1w", "snooze alerts", True),
        (Action.RECONNECT, "12345678", "send reconnect instructions", False),
        (Action.FORGET_CONFIRM, "23456789", "remove customers", False),
        (Action.RESEND, str(invitation.id), "resend someone else's invitation", False),
        (Action.LINK_PICK, approval, "link tenants", False),
    ]
    for action, value, what, select_menu in presses:
        _, key = await bot.action(
            action, value, user=SUPPORT, channel=ALERTS, ephemeral=False, select=select_menu
        )
        assert f"Only bot admins may {what}" in text_of(await bot.reply(key)), action
    assert await audit_actions(bot) == []
    refused = await incident_of(bot)
    assert (refused.acknowledged_by, refused.snoozed_until) == (None, None)
    assert await customers(bot) == 3
    assert not bot.slack.calls_to("views.open")

    for action, value, _, select_menu in presses:
        await bot.action(
            action, value, user=ADMIN, channel=ALERTS, ephemeral=False, select=select_menu
        )
    expected = {
        (ADMIN, "acknowledge", "12345678"), (ADMIN, "snooze", "12345678"),
        (ADMIN, "reconnect-instructions", "12345678"), (ADMIN, "forget", "23456789"),
        (ADMIN, "invite-resend", "12345678"),
    }  # fmt: skip

    async def all_audited() -> bool:
        return expected <= set(await audit_actions(bot))

    await eventually(all_audited)
    done = await incident_of(bot)
    assert done.acknowledged_by == ADMIN and done.snoozed_by == ADMIN
    assert await customers(bot) == 2
    await bot.slack.wait_for("views.open")  # the picker opened; linking is audited on submit


async def test_checks_by_hand_are_throttled_per_customer_and_say_when_the_last_one_ran(
    bot: BotHarness,
) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    first = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    await bot.add_customer("23456789", "Tweede Klant")
    _, key = await bot.command("check 12345678", user=SUPPORT)
    assert "Bouwbedrijf" in text_of(await bot.reply(key, nth=2))
    assert bot.sim.counters.token_requests(tenant_id=tenant) == 1

    _, key = await bot.command("check 12345678", user=SUPPORT)
    refused = text_of(await bot.reply(key))
    assert "*Bouwbedrijf* was checked by hand <!date^" in refused
    assert "its last check ran <!date^" in refused and "try again in" in refused
    _, key = await bot.action(Action.CHECK_NOW, "12345678", user=ADMIN)
    assert "was checked by hand" in text_of(await bot.reply(key))  # admins too, any replica
    assert bot.sim.counters.token_requests(tenant_id=tenant) == 1

    _, key = await bot.action(Action.CHECK_NOW, "23456789", user=SUPPORT)  # another customer
    assert "Tweede Klant" in text_of(await bot.reply(key))

    async with bot.runtime.bot.db.transaction() as session:  # a minute later
        await session.execute(
            update(Customer)
            .where(Customer.id == first)
            .values(last_manual_check_at=utcnow() - timedelta(minutes=1, seconds=1))
        )
    _, key = await bot.action(Action.CHECK_NOW, "12345678", user=SUPPORT)
    assert "Bouwbedrijf" in text_of(await bot.reply(key))
    assert bot.sim.counters.token_requests(tenant_id=tenant) == 2
    assert [a for a in await audit_actions(bot) if a[1] == "check"] == [
        (SUPPORT, "check", "12345678"), (SUPPORT, "check", "23456789"),
        (SUPPORT, "check", "12345678"),
    ]  # fmt: skip


async def test_a_non_admin_typing_each_changing_subcommand_is_refused_and_nothing_changes(
    bot: BotHarness,
) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    await bot.add_customer("23456789", "Tweede Klant")
    _, key = await bot.command("snooze 12345678 1d", user=ADMIN)
    assert "snoozed" in text_of(await bot.reply(key)).lower()
    audited = await audit_actions(bot)

    typed = {
        "snooze 23456789 1d": "snooze alerts",
        "unsnooze 12345678": "unsnooze alerts",
        "resolve 12345678": "resolve incidents",
        "forget 23456789": "remove customers",
        "invite": "invite customers",
        "digest": "post the digest",
    }
    for text, what in typed.items():
        _, key = await bot.command(text, user=SUPPORT)
        assert f"Only bot admins may {what}" in text_of(await bot.reply(key)), text

    assert await audit_actions(bot) == audited
    assert await customers(bot) == 2
    async with bot.runtime.bot.db.transaction() as session:
        snoozed = {c.kvk: c.snoozed_until for c in await session.scalars(select(Customer))}
    assert snoozed["12345678"] is not None and snoozed["23456789"] is None
    assert not bot.slack.calls_to("views.open")
