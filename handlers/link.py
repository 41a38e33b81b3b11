"""``/brincr link <kvk> <tenant-id>``, and the "Link to customer…" button on an approval that
matched no invitation, with its customer picker. Admins only."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions import Action, View
from bot.clock import utcnow
from bot.errors import UserError
from bot.linking import (
    LINK_USAGE,
    TenantApproval,
    attach_tenant,
    check_linked,
    link_status,
    unlinked_customers,
)
from bot.render_link import PICK_BLOCK, render_link_picker, render_linked, render_linked_answer
from bot.slack_text import cut
from handlers.deps import Deps
from handlers.router import Invocation, answers_user_errors

log = logging.getLogger(__name__)
WHAT = "link tenants"
NO_CANDIDATES = (
    "No customer is waiting for a tenant in that environment. Send an invitation first with "
    "`/brincr invite`, then link it with `/brincr link <kvk> <tenant-id>`."
)


def register(app: AsyncApp, deps: Deps) -> None:
    services, permissions = deps.services, deps.permissions

    async def link(inv: Invocation) -> None:
        await permissions.require_admin(inv.user_id, WHAT)
        kvk, _, tenant_id = inv.rest.rpartition(" ")  # a KvK may be typed with spaces
        if not kvk.strip():
            raise UserError("Which customer, and which tenant?", usage=LINK_USAGE)
        data = await link_status(services, kvk=kvk, tenant_id=tenant_id, user_id=inv.user_id)
        await inv.reply(render_linked(data, services.settings.brincr_scopes, utcnow()))

    deps.commands.add("link", link)

    @app.action(Action.LINK_PICK.value)
    @answers_user_errors
    async def pick(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        await permissions.require_admin(body["user"]["id"], WHAT)
        container = body.get("container") or {}
        approval = replace(
            TenantApproval.decode(body["actions"][0].get("value") or ""),
            channel_id=container.get("channel_id"),
            message_ts=container.get("message_ts"),
        )
        candidates = await unlinked_customers(services, approval.environment)
        if not candidates:
            raise UserError(NO_CANDIDATES)
        view = render_link_picker(
            approval.tenant_id, approval.environment, candidates, approval.encode()
        )
        await client.views_open(trigger_id=body["trigger_id"], view=view.to_dict())

    @app.view(View.LINK.value)
    async def submit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        user = body["user"]["id"]
        view = body["view"]
        try:
            await permissions.require_admin(user, WHAT)
            approval = TenantApproval.decode(view.get("private_metadata") or "")
            customer = await attach_tenant(
                services, kvk=_picked(view), tenant_id=approval.tenant_id, user_id=user
            )
        except UserError as error:  # shown under the select; the modal stays open
            log.info("link picker refused for %s: %s", user, error)
            await ack(response_action="errors", errors={PICK_BLOCK: cut(str(error), 150)})
            return
        await ack()
        checked = await check_linked(services, customer.id)
        if approval.channel_id and approval.message_ts:
            await client.chat_update(
                channel=approval.channel_id,
                ts=approval.message_ts,
                **render_linked_answer(checked, user).kwargs(),
            )


def _picked(view: dict[str, Any]) -> str:
    """The KvK chosen in the picker's select ("" when none, which the parser refuses)."""
    chosen = view.get("state", {}).get("values", {}).get(PICK_BLOCK, {})
    selected = chosen.get(Action.LINK_CUSTOMER.value, {}).get("selected_option") or {}
    return str(selected.get("value") or "")
