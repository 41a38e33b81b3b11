"""``/brincr link <kvk> <tenant-id>``, and the "Link to customer…" button on an approval that
matched no invitation, with its customer picker. Admins only. The service is
:class:`bot.onboarding.linking.Linking`; the renderers :mod:`bot.onboarding.render_link`."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.composition import Bot
from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.fleet.render import render_status
from bot.onboarding.linking import LINK_USAGE
from bot.onboarding.render_link import (
    PICK_BLOCK,
    render_link_picker,
    render_linked,
    render_linked_answer,
)
from bot.onboarding.values import TenantApproval
from bot.slack.ids import Action, View
from bot.slack.text import cut
from handlers.gate import Gate
from handlers.payloads import Press, Submission
from handlers.router import CommandRouter, Invocation
from handlers.wiring import Listeners

log = logging.getLogger(__name__)
WHAT = "link tenants"
NO_CANDIDATES = (
    "No customer is waiting for a tenant in that environment. Send an invitation first with "
    "`/brincr invite`, then link it with `/brincr link <kvk> <tenant-id>`."
)


async def link(inv: Invocation) -> None:
    kvk, _, tenant_id = inv.rest.rpartition(" ")  # a KvK may be typed with spaces
    if not kvk.strip():
        raise UserError("Which customer, and which tenant?", usage=LINK_USAGE)
    data = await inv.bot.linking.link_status(kvk=kvk, tenant_id=tenant_id, user_id=inv.user_id)
    status = render_status(data, inv.bot.settings.terms(utcnow()), utcnow())
    await inv.reply(render_linked(data.customer, status))


async def pick(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, bot: Bot) -> None:
    await ack()
    press = Press.of(body)
    approval = replace(
        TenantApproval.decode(press.value), channel_id=press.channel_id,
        message_ts=press.message_ts,
    )  # fmt: skip
    candidates = await bot.linking.unlinked_customers(approval.environment)
    if not candidates:
        raise UserError(NO_CANDIDATES)
    view = render_link_picker(
        approval.tenant_id, approval.environment, candidates, approval.encode()
    )
    await client.views_open(trigger_id=press.trigger_id or "", view=view.to_dict())


async def submit(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, bot: Bot, gate: Gate
) -> None:
    form = Submission.of(body)
    try:
        await gate.require_admin(form.user_id, WHAT)
        approval = TenantApproval.decode(form.private_metadata)
        customer = await bot.linking.attach_tenant(
            kvk=form.selected(PICK_BLOCK, Action.LINK_CUSTOMER.value),
            tenant_id=approval.tenant_id,
            user_id=form.user_id,
        )
    except UserError as error:  # shown under the select; the modal stays open
        log.info("link picker refused for %s: %s", form.user_id, error)
        await ack(response_action="errors", errors={PICK_BLOCK: cut(str(error), 150)})
        return
    await ack()
    checked = await bot.linking.check_linked(customer.id)
    if approval.channel_id and approval.message_ts:
        await client.chat_update(
            channel=approval.channel_id,
            ts=approval.message_ts,
            **render_linked_answer(checked, form.user_id).kwargs(),
        )


def register(on: Listeners, commands: CommandRouter) -> None:
    commands.add("link", link, admin=WHAT)
    on.action(Action.LINK_PICK, pick, admin=WHAT)
    on.view(View.LINK, submit)
