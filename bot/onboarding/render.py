"""Pure renderers for invitations: the ``/brincr invite`` modal (and reading it back), the
hand-off message and its re-renders, the plain-text copy, the stale-invitation DM.

The hand-off message is the only channel message that shows an invitation code; the other
place is the ephemeral plain-text copy for its clicker. Fallback ``text`` never carries it.
Every user-supplied value goes through :func:`~bot.slack.text.escape`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, cast

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    DividerBlock,
    InputBlock,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
)
from slack_sdk.models.views import View as SlackView

from bot.domain import Environment, format_duration
from bot.onboarding.handoff import Handoff, Language, customer_mrkdwn, customer_text
from bot.slack.blocks import Message, button, context, fit, header, section
from bot.slack.ids import Action, View
from bot.slack.text import SECTION_LIMIT, code, date, escape
from storage.models import Customer, Invitation

HandoffStatus = Literal["waiting", "approved", "partial"]
MODAL_TITLE = "Invite a customer"  # Slack: at most 24 characters
FIELDS = ("name", "kvk", "environment", "code", "language", "contact")
_ENVIRONMENTS = (("production", "Production"), ("sandbox", "Sandbox"))
_LANGUAGES = (("nl", "Dutch"), ("en", "English"))
_AUDIENCE = {
    Environment.PRODUCTION: "Forward the text below to the Brincr user at the customer.",
    Environment.SANDBOX: "Sandbox: the developer redeems this code himself with these steps.",
}


# --- the modal -------------------------------------------------------------------------


def block_id(field: str) -> str:
    return f"invite_{field}"


def _text_input(
    field: str, label: str, max_length: int, placeholder: str, *, optional: bool = False
) -> InputBlock:
    element = PlainTextInputElement(
        action_id=Action.INVITE_FIELD.value, max_length=max_length, placeholder=placeholder
    )
    return InputBlock(block_id=block_id(field), label=label, element=element, optional=optional)


def _choice(field: str, label: str, options: Sequence[tuple[str, str]]) -> InputBlock:
    choices = [Option(value=value, label=text) for value, text in options]
    element = RadioButtonsElement(
        action_id=Action.INVITE_FIELD.value, options=choices, initial_option=choices[0]
    )
    return InputBlock(block_id=block_id(field), label=label, element=element)


def render_invite_modal(channel_id: str) -> SlackView:
    """The form behind ``/brincr invite``; the channel to post the hand-off in rides along."""
    blocks: list[Block] = [
        _text_input("name", "Customer name", 200, "Bouwbedrijf De Vries B.V."),
        _text_input("kvk", "KvK number", 20, "12345678"),
        _choice("environment", "Environment", _ENVIRONMENTS),
        _text_input("code", "Invitation code", 100, "from the Visma Developer Portal"),
        _choice("language", "Language of the instructions", _LANGUAGES),
        _text_input("contact", "Contact person", 200, "Jan de Vries", optional=True),
    ]
    return SlackView(
        type="modal",
        callback_id=View.INVITE.value,
        title=MODAL_TITLE,
        submit="Send hand-off",
        close="Cancel",
        private_metadata=json.dumps({"channel": channel_id}),
        blocks=blocks,
    )


def read_invite_form(values: Mapping[str, Any]) -> dict[str, str]:
    """The submitted form (``view.state.values``) as ``{field: text}``; "" when empty."""
    form = {}
    for field in FIELDS:
        element = (values.get(block_id(field)) or {}).get(Action.INVITE_FIELD.value) or {}
        chosen = element.get("selected_option") or {}
        form[field] = str(element.get("value") or chosen.get("value") or "")
    return form


def read_modal_channel(private_metadata: str) -> str:
    try:
        data = json.loads(private_metadata or "{}")
    except ValueError:
        return ""
    return str(data.get("channel") or "") if isinstance(data, dict) else ""


def field_errors(errors: Mapping[str, str]) -> dict[str, str]:
    """Errors by form field → errors by block id, as ``response_action="errors"`` takes them."""
    return {block_id(field): message for field, message in errors.items()}


# --- the hand-off ----------------------------------------------------------------------


def handoff_of(invitation: Invitation, customer: Customer, scopes: Sequence[str]) -> Handoff:
    return Handoff(
        customer_name=customer.name,
        kvk=customer.kvk,
        environment=Environment(customer.environment),
        code=invitation.code,
        language=cast(Language, invitation.language),
        scopes=tuple(scopes),
        contact=invitation.contact,
    )


def _status_line(invitation: Invitation, status: HandoffStatus, missing: Sequence[str]) -> str:
    if status == "approved":
        when = f" {date(invitation.approved_at)}" if invitation.approved_at else ""
        return f":white_check_mark: *Approved*{when}: every scope granted, the connection works"
    if status == "partial":
        names = ", ".join(code(s) for s in missing)
        return f":large_orange_circle: *Partly approved*: missing {names}"
    return ":hourglass_flowing_sand: Waiting for the customer to approve"


def _summary(invitation: Invitation, customer: Customer, scopes: Sequence[str]) -> str:
    requested = " ".join(code(s) for s in scopes) or "none (set `BRINCR_SCOPES`)"
    language = dict(_LANGUAGES).get(invitation.language, invitation.language)
    lines = [
        f"*Customer:* {escape(customer.name)} · KvK `{customer.kvk}` · {customer.environment}",
        f"*Requested scopes:* {requested}",
        f"*Invited by* <@{invitation.invited_by}> {date(invitation.created_at)} · {language}",
    ]
    if invitation.contact:
        lines.append(f"*Contact:* {escape(invitation.contact)}")
    return "\n".join(lines)


def render_handoff(
    invitation: Invitation,
    customer: Customer,
    scopes: Sequence[str],
    *,
    status: HandoffStatus = "waiting",
    missing: Sequence[str] = (),
    resent_by: str | None = None,
) -> Message:
    """The hand-off: an internal summary with a status line, the customer-ready text, and a
    button for the plain-text copy. Re-rendered with another ``status`` as approval goes on."""
    handoff = handoff_of(invitation, customer, scopes)
    blocks: list[Block] = [
        header(f"Invitation: {customer.name}"),
        section(_summary(invitation, customer, scopes)),
        section(_status_line(invitation, status, missing)),
    ]
    if resent_by:
        blocks.append(context(f"Sent again by <@{resent_by}>"))
    blocks += [
        DividerBlock(),
        context(_AUDIENCE[handoff.environment]),
        section(customer_mrkdwn(handoff)),
        ActionsBlock(
            elements=[button("Plain text for e-mail", Action.HANDOFF_TEXT, str(invitation.id))]
        ),
    ]
    word = {"waiting": "waiting", "approved": "approved", "partial": "partly approved"}[status]
    text = f"Invitation for {escape(customer.name)} (KvK {customer.kvk}): {word}"
    return Message(text=text, blocks=fit(blocks))


def render_approved_reply(invitation: Invitation, customer: Customer) -> Message:
    text = (
        f"<@{invitation.invited_by}> Customer {escape(customer.name)} (KvK {customer.kvk}) "
        "approved all scopes: the connection works."
    )
    return Message(text=text, blocks=[section(f":tada: {text}")])


def _chunks(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, split between lines."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line) > limit:
            pieces.append(line[:limit])
            line = line[limit:]
        current = line
    return [*pieces, current] if current else pieces


def render_plain_text(invitation: Invitation, customer: Customer, scopes: Sequence[str]) -> Message:
    """The customer text without Slack markup, for copying into an e-mail (ephemeral)."""
    plain = escape(customer_text(handoff_of(invitation, customer, scopes)))
    blocks: list[Block] = [context("Copy this into your e-mail to the customer:")]
    blocks += [section(f"```\n{piece}\n```") for piece in _chunks(plain, SECTION_LIMIT - 10)]
    return Message(text=f"Plain text for {escape(customer.name)}", blocks=fit(blocks))


# --- replies and reminders -------------------------------------------------------------


def render_invite_recorded(customer: Customer, *, created: bool) -> Message:
    """The answer to ``/brincr invite <kvk> <code>``."""
    lines = [
        f":envelope: Invitation for *{escape(customer.name)}* (KvK {customer.kvk}, "
        f"{customer.environment}) recorded: the hand-off is posted here in a moment."
    ]
    if created:
        lines.append(
            "This KvK number was new, so I created it in production with Dutch instructions. "
            "Run `/brincr invite` without arguments for the form that sets the name, "
            "environment and language."
        )
    return Message(text=lines[0], blocks=[section("\n".join(lines))])


def render_stale_dm(invitation: Invitation, customer: Customer, after: timedelta) -> Message:
    text = (
        f"Invitation for {escape(customer.name)} (KvK {customer.kvk}) is still not approved "
        f"after {format_duration(after)}"
    )
    where = f" in <#{invitation.channel_id}>" if invitation.channel_id else ""
    detail = (
        f":hourglass: {text}.\nYou sent it {date(invitation.created_at)}{where}. Ask the "
        "customer whether the code worked, or send the instructions again."
    )
    resend = button("Resend instructions", Action.RESEND, str(invitation.id), style="primary")
    return Message(text=text, blocks=[section(detail), ActionsBlock(elements=[resend])])


def render_sent_again() -> Message:
    return Message(text="Sent again", blocks=[section(":outbox_tray: Sent again")])
