"""``/brincr invite``: the form (or the short form ``invite <kvk> <code>``), its submission,
and the buttons of the hand-off ("Plain text for e-mail") and of the stale-invitation DM
("Resend instructions"). The service is :mod:`bot.invites`; the renderers
:mod:`bot.render_onboarding`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot import invites
from bot.actions import Action, View
from bot.errors import PermissionDenied, UserError
from bot.render_onboarding import (
    field_errors,
    read_invite_form,
    read_modal_channel,
    render_invite_modal,
    render_invite_recorded,
    render_plain_text,
    render_sent_again,
)
from handlers.deps import Deps
from handlers.router import Invocation, answers_user_errors

log = logging.getLogger(__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    services, permissions = deps.services, deps.permissions
    scopes = services.settings.brincr_scopes

    async def invite(inv: Invocation) -> None:
        await permissions.require_admin(inv.user_id, "invite customers")
        if not inv.args:
            # The trigger_id is valid for 3 s, once: open the form before any other work.
            modal = render_invite_modal(inv.channel_id)
            await inv.client.views_open(trigger_id=inv.trigger_id or "", view=modal)
            return
        invited = await invites.invite(
            services, invites.parse_short_invite(inv.rest), invited_by=inv.user_id,
            channel_id=inv.channel_id,
        )  # fmt: skip
        await inv.reply(render_invite_recorded(invited.customer, created=invited.created))

    deps.commands.add("invite", invite)

    @app.view(View.INVITE.value)
    async def submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        try:
            await permissions.require_admin(user, "invite customers")
            form = invites.parse_invite_form(read_invite_form(view["state"]["values"]))
        except invites.InvalidInvite as error:
            log.info("invite form from %s refused: %s", user, ", ".join(sorted(error.errors)))
            await ack(response_action="errors", errors=field_errors(error.errors))
            return
        except PermissionDenied as error:
            refusal = f"{error} {error.usage or ''}".strip()
            await ack(response_action="errors", errors=field_errors({"name": refusal}))
            return
        await ack()
        channel = read_modal_channel(view.get("private_metadata", ""))
        await invites.invite(services, form, invited_by=user, channel_id=channel)

    @app.action(Action.HANDOFF_TEXT.value)
    @answers_user_errors
    async def plain_text(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        invitation, customer = await invites.load_invitation(services, _invitation_id(body))
        log.info("plain-text hand-off of invitation %s for %s", invitation.id, body["user"]["id"])
        message = render_plain_text(invitation, customer, scopes)
        await respond(**message.kwargs(), response_type="ephemeral", replace_original=False)

    @app.action(Action.RESEND.value)
    @answers_user_errors
    async def resend(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        user = body["user"]["id"]
        invitation, _customer = await invites.load_invitation(services, _invitation_id(body))
        if user != invitation.invited_by:
            await permissions.require_admin(user, "resend someone else's invitation")
        await invites.resend_handoff(services, invitation.id, user_id=user)
        message = render_sent_again()
        await respond(**message.kwargs(), response_type="ephemeral", replace_original=False)


def _invitation_id(body: dict[str, Any]) -> int:
    value = str(body["actions"][0].get("value") or "")
    if not value.isdigit():
        raise UserError("That button is out of date: run `/brincr invite` again.")
    return int(value)
