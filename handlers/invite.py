"""``/brincr invite``: the form (or the short form ``invite <kvk> <code>``), its submission,
and the buttons of the hand-off ("Plain text for e-mail") and of the stale-invitation DM
("Resend instructions"). The service is :mod:`bot.onboarding.invitations`; the renderers
:mod:`bot.onboarding.render`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond

from bot.composition import Bot
from bot.core.errors import PermissionDenied, UserError
from bot.onboarding import invitations
from bot.onboarding.forms import InvalidInvite, parse_invite_form, parse_short_invite
from bot.onboarding.render import (
    field_errors,
    read_invite_form,
    read_modal_channel,
    render_invite_modal,
    render_invite_recorded,
    render_plain_text,
    render_sent_again,
)
from bot.slack.ids import Action, View
from handlers.gate import Gate
from handlers.payloads import Press, Submission
from handlers.router import CommandRouter, Invocation
from handlers.wiring import Listeners

log = logging.getLogger(__name__)
WHAT = "invite customers"


async def invite(inv: Invocation) -> None:
    if not inv.args:
        # The trigger_id is valid for 3 s, once: open the form before any other work.
        modal = render_invite_modal(inv.channel_id)
        await inv.client.views_open(trigger_id=inv.trigger_id or "", view=modal)
        return
    invited = await invitations.invite(
        inv.bot.services, parse_short_invite(inv.rest), invited_by=inv.user_id,
        channel_id=inv.channel_id,
    )  # fmt: skip
    await inv.reply(render_invite_recorded(invited.customer, created=invited.created))


async def submitted(ack: AsyncAck, body: dict[str, Any], bot: Bot, gate: Gate) -> None:
    """The form's answers: errors are shown under the fields (the modal stays open)."""
    form = Submission.of(body)
    try:
        await gate.require_admin(form.user_id, WHAT)
        parsed = parse_invite_form(read_invite_form(form.values))
    except InvalidInvite as error:
        log.info("invite form from %s refused: %s", form.user_id, ", ".join(sorted(error.errors)))
        await ack(response_action="errors", errors=field_errors(error.errors))
        return
    except PermissionDenied as error:
        refusal = f"{error} {error.usage or ''}".strip()
        await ack(response_action="errors", errors=field_errors({"name": refusal}))
        return
    await ack()
    channel = read_modal_channel(form.private_metadata)
    await invitations.invite(bot.services, parsed, invited_by=form.user_id, channel_id=channel)


async def plain_text(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot) -> None:
    await ack()
    press = Press.of(body)
    invitation, customer = await invitations.load_invitation(bot.services, _invitation_id(press))
    log.info("plain-text hand-off of invitation %s for %s", invitation.id, press.user_id)
    message = render_plain_text(invitation, customer, bot.settings.requested_scopes)
    await respond(**message.kwargs(), response_type="ephemeral", replace_original=False)


async def resend(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, bot: Bot, gate: Gate
) -> None:
    """The inviter may resend their own invitation; anyone else must be an admin."""
    await ack()
    press = Press.of(body)
    invitation, _customer = await invitations.load_invitation(bot.services, _invitation_id(press))
    if press.user_id != invitation.invited_by:
        await gate.require_admin(press.user_id, "resend someone else's invitation")
    await invitations.resend_handoff(bot.services, invitation.id, user_id=press.user_id)
    message = render_sent_again()
    await respond(**message.kwargs(), response_type="ephemeral", replace_original=False)


def _invitation_id(press: Press) -> int:
    if not press.value.isdigit():
        raise UserError("That button is out of date: run `/brincr invite` again.")
    return int(press.value)


def register(on: Listeners, commands: CommandRouter) -> None:
    commands.add("invite", invite, admin=WHAT)
    on.view(View.INVITE, submitted)
    on.action(Action.HANDOFF_TEXT, plain_text)
    on.action(Action.RESEND, resend)
