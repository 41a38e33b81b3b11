"""What support asks of the fleet: ``/brincr status``, ``check``, ``list``, ``help`` and
``forget``, the status message's buttons (Check now, Share), the list's pages, the forget
confirmation, and the App Home. The service is :mod:`bot.fleet.service`; the renderers
:mod:`bot.fleet.render` and :mod:`bot.fleet.render_home`."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.composition import Bot
from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.fleet.render import (
    LIST_PAGE_SIZE,
    render_forget_confirm,
    render_list,
    render_shared,
    render_status,
)
from bot.fleet.render_home import home_view_dict
from bot.slack.blocks import render_notice
from bot.slack.help import render_help
from bot.slack.ids import Action
from bot.slack.text import escape
from handlers.gate import Gate
from handlers.payloads import Press
from handlers.router import CommandRouter, Invocation
from handlers.wiring import Listeners
from storage.customers import CUSTOMER_USAGE

STATUS_USAGE = "`/brincr status <customer>`: " + CUSTOMER_USAGE
CHECK_USAGE = "`/brincr check <customer>`: " + CUSTOMER_USAGE
FORGET_USAGE = "`/brincr forget <customer>`: " + CUSTOMER_USAGE


def _named(inv: Invocation, usage: str) -> str:
    if not inv.rest:
        raise UserError("Which customer?", usage=usage)
    return inv.rest


async def status(inv: Invocation) -> None:
    data = await inv.bot.fleet.status(_named(inv, STATUS_USAGE))
    await inv.reply(render_status(data, inv.bot.settings.terms(utcnow()), utcnow()))


async def check(inv: Invocation) -> None:
    customer = await inv.bot.fleet.resolve(_named(inv, CHECK_USAGE))
    admin = await inv.gate.is_admin(inv.user_id)
    await inv.bot.fleet.start_manual_check(customer.id, inv.user_id, admin=admin)
    await inv.reply(render_notice(f":hourglass_flowing_sand: Checking *{escape(customer.name)}*…"))
    data = await inv.bot.fleet.check(customer.id)
    message = render_status(data, inv.bot.settings.terms(utcnow()), utcnow())
    await inv.reply(message, replace_original=True)


async def list_(inv: Invocation) -> None:
    which = inv.args[0].lower() if inv.args else "all"
    page = await inv.bot.fleet.page(which, 0, LIST_PAGE_SIZE)
    await inv.reply(render_list(page, which, utcnow()))


async def help_(inv: Invocation) -> None:
    await inv.reply(render_help())


async def forget(inv: Invocation) -> None:
    customer = await inv.bot.fleet.resolve(_named(inv, FORGET_USAGE))
    await inv.reply(render_forget_confirm(customer))


async def check_now(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot, gate: Gate
) -> None:
    await ack()
    press = Press.of(body)
    customer = await bot.fleet.resolve(press.value)
    admin = await gate.is_admin(press.user_id)
    await bot.fleet.start_manual_check(customer.id, press.user_id, admin=admin)
    data = await bot.fleet.check(customer.id)
    # An ephemeral status is refreshed in place; from a channel message (an alert), the
    # clicker gets the fresh status for their eyes only.
    message = render_status(data, bot.settings.terms(utcnow()), utcnow())
    await respond(
        **message.kwargs(), response_type="ephemeral", replace_original=press.in_ephemeral
    )


async def share(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot) -> None:
    await ack()
    press = Press.of(body)
    customer = await bot.fleet.resolve(press.value)
    await bot.fleet.start_share(customer.id, press.user_id, press.channel_id or press.user_id)
    data = await bot.fleet.status(press.value)
    message = render_shared(data, bot.settings.terms(utcnow()), utcnow(), press.user_id)
    await respond(**message.kwargs(), response_type="in_channel", replace_original=False)


async def next_page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot) -> None:
    await ack()
    which, offset = _page_ref(Press.of(body).value)
    page = await bot.fleet.page(which, offset, LIST_PAGE_SIZE)
    message = render_list(page, which, utcnow())
    await respond(**message.kwargs(), response_type="ephemeral", replace_original=True)


def _page_ref(value: str) -> tuple[str, int]:
    """The list filter and offset a page button carries (UserError if it is not one)."""
    try:
        wanted = json.loads(value)
        return str(wanted["f"]), max(0, int(wanted["o"]))
    except (ValueError, KeyError, TypeError):
        raise UserError("That page button is out of date: run `/brincr list` again.") from None


async def confirm_forget(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot
) -> None:
    await ack()
    press = Press.of(body)
    customer = await bot.fleet.forget(press.value, press.user_id)
    text = (
        f":wastebasket: Removed *{escape(customer.name)}* (KvK {customer.kvk})."
        if customer
        else "That customer was already removed."
    )
    await respond(**render_notice(text).kwargs(), replace_original=True)


async def cancel_forget(ack: AsyncAck, respond: AsyncRespond) -> None:
    await ack()
    await respond(**render_notice("Kept it: nothing was removed.").kwargs(), replace_original=True)


async def home_opened(event: dict[str, Any], client: AsyncWebClient, bot: Bot) -> None:
    if event.get("tab", "home") != "home":
        return
    home = await bot.fleet.home()
    await client.views_publish(user_id=str(event.get("user")), view=home_view_dict(home, utcnow()))


def register(on: Listeners, commands: CommandRouter) -> None:
    commands.add("status", status)
    commands.add("check", check)
    commands.add("list", list_)
    commands.add("help", help_)
    commands.add("forget", forget, admin="remove customers")
    on.action(Action.CHECK_NOW, check_now)
    on.action(Action.SHARE, share)
    on.action(Action.LIST_PAGE, next_page)
    on.action(Action.FORGET_CONFIRM, confirm_forget, admin="remove customers")
    on.action(Action.FORGET_CANCEL, cancel_forget)
    on.event("app_home_opened", home_opened)
