"""On-call surfaces: the alert message's buttons (Acknowledge, the Snooze menu, Resolve, Send
reconnect instructions; "Check now" is the fleet module's) and ``/brincr snooze``,
``unsnooze`` and ``resolve``. Every one changes something, so every one goes through the admin
gate. The alert message itself is updated in place through the outbox, and PagerDuty told,
by :class:`bot.alerts.service.Alerts`."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond

from bot.composition import Bot
from bot.core.errors import UserError
from bot.domain import SNOOZE_USAGE, parse_snooze
from bot.onboarding.invitations import has_invitation, send_reconnect
from bot.slack.blocks import render_notice
from bot.slack.ids import Action
from bot.slack.text import date, escape
from handlers.payloads import Press
from handlers.router import CommandRouter, Invocation
from handlers.wiring import Listeners
from storage.customers import CUSTOMER_USAGE

RESOLVE_USAGE = "`/brincr resolve <customer>`: " + CUSTOMER_USAGE


def _incident_id(text: str) -> int:
    if not text.isdigit():
        raise UserError("That button no longer points at an incident.")
    return int(text)


async def _ephemeral(respond: AsyncRespond, text: str) -> None:
    await respond(**render_notice(text).kwargs(), response_type="ephemeral", replace_original=False)


async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot) -> None:
    await ack()
    press = Press.of(body)
    if not await bot.alerts.acknowledge(_incident_id(press.value), press.user_id):
        await _ephemeral(respond, "Already acknowledged or resolved: nothing changed.")


async def snooze_menu(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot) -> None:
    await ack()
    press = Press.of(body)
    ref, _, duration = press.value.partition(":")
    until = await bot.alerts.snooze_incident(
        _incident_id(ref), parse_snooze(duration), press.user_id
    )
    if until is None:
        await _ephemeral(respond, "That incident is already resolved: nothing to snooze.")


async def reconnect(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot) -> None:
    await ack()
    press = Press.of(body)
    customer = await bot.fleet.resolve(press.value)
    channel = press.channel_id or bot.settings.alert_channel or press.user_id
    thread = await bot.alerts.root_notification(customer.id)
    sent = await send_reconnect(
        bot.services, customer.id, user_id=press.user_id, channel_id=channel,
        thread_target_id=thread,
    )  # fmt: skip
    if not sent:
        await _ephemeral(respond, f"KvK {customer.kvk} no longer exists: nothing was sent.")
    elif customer.state == "revoked" and not await has_invitation(bot.services, customer.id):
        await _ephemeral(
            respond,
            "Sent the re-approval steps. If the customer removed the app entirely, it needs "
            f"a new invitation: `/brincr invite {customer.kvk} <code>`.",
        )


async def resolve_button(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot
) -> None:
    await ack()
    press = Press.of(body)
    if not await bot.alerts.resolve_by_hand(_incident_id(press.value), press.user_id):
        await _ephemeral(respond, "Already resolved: nothing changed.")


async def resolve(inv: Invocation) -> None:
    if not inv.rest:
        raise UserError("Which customer?", usage=RESOLVE_USAGE)
    customer = await inv.bot.fleet.resolve(inv.rest)
    incident_id = await inv.bot.alerts.open_incident_of(customer.id)
    if incident_id is None or not await inv.bot.alerts.resolve_by_hand(incident_id, inv.user_id):
        await inv.reply(render_notice(f"*{escape(customer.name)}* has no open incident."))
        return
    await inv.reply(
        render_notice(
            f":white_check_mark: Resolved the incident of *{escape(customer.name)}*; "
            "its next failing check opens a new one."
        )
    )


async def snooze(inv: Invocation) -> None:
    if len(inv.args) < 2:
        raise UserError("Which customer, and for how long?", usage=SNOOZE_USAGE)
    query, duration = inv.rest.rsplit(maxsplit=1)
    length = parse_snooze(duration)
    customer = await inv.bot.fleet.resolve(query)
    until = await inv.bot.alerts.snooze_customer(customer.id, length, inv.user_id)
    assert until is not None
    name = escape(customer.name)
    await inv.reply(render_notice(f":zzz: Alerts for *{name}* are snoozed until {date(until)}."))


async def unsnooze(inv: Invocation) -> None:
    if not inv.rest:
        raise UserError("Which customer?", usage="`/brincr unsnooze <customer>`")
    customer = await inv.bot.fleet.resolve(inv.rest)
    await inv.bot.alerts.snooze_customer(customer.id, None, inv.user_id)
    await inv.reply(render_notice(f":bell: Alerts for *{escape(customer.name)}* are on again."))


def register(on: Listeners, commands: CommandRouter) -> None:
    commands.add("snooze", snooze, admin="snooze alerts")
    commands.add("unsnooze", unsnooze, admin="unsnooze alerts")
    commands.add("resolve", resolve, admin="resolve incidents")
    on.action(Action.RESOLVE, resolve_button, admin="resolve incidents")
    on.action(Action.ACKNOWLEDGE, acknowledge, admin="acknowledge incidents")
    on.action(Action.SNOOZE, snooze_menu, admin="snooze alerts")
    on.action(Action.RECONNECT, reconnect, admin="send reconnect instructions")
