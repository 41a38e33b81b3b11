"""Renderers for linking a customer to its tenant: the ``/brincr link`` reply, the
onboarding-channel question about an unmatched approval, the customer picker modal, and the
answer that replaces the question once it is linked. Pure: domain values in, Block Kit out."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import (
    ActionsBlock,
    InputBlock,
    Option,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View as ModalView

from bot.onboarding.values import LinkCandidate
from bot.slack.blocks import (
    Message,
    button,
    context,
    customer_label,
    fit,
    section,
    state_word,
)
from bot.slack.ids import Action, View
from bot.slack.text import BUTTON_TEXT_LIMIT, escape
from storage.models import Customer

PICK_BLOCK = "customer"  # block_id of the picker's select: view_submission errors name it
OPTION_TEXT_LIMIT = BUTTON_TEXT_LIMIT  # 75 characters, as for buttons
MODAL_TITLE = "Link tenant"  # at most 24 characters


def _environment(environment: str | None) -> str:
    return f"environment {environment}" if environment else "environment unknown"


def render_linked(c: Customer, status: Message) -> Message:
    """The ``/brincr link`` reply: what was linked, then ``status`` (the customer's status
    message after its first check)."""
    note = f":link: Tenant `{c.tenant_id}` is linked to {customer_label(c)}. First check:"
    return Message(text=f"Linked: {status.text}", blocks=fit([section(note), *status.blocks]))


def render_tenant_question(tenant_id: str, environment: str | None, value: str) -> Message:
    """Posted in the onboarding channel when an approval matches no single invitation."""
    text = (
        f"A customer approved the integration: tenant `{tenant_id}` "
        f"({_environment(environment)}) — which customer is it?"
    )
    return Message(
        text=text,
        blocks=[
            section(":inbox_tray: " + text),
            ActionsBlock(elements=[button("Link to customer…", Action.LINK_PICK, value)]),
            context("Or link it by hand: `/brincr link <kvk> " + tenant_id + "`"),
        ],
    )


def option_label(name: str, kvk: str) -> str:
    """``Name (KvK 12345678)`` with the name escaped and shortened to fit 75 characters."""
    suffix = f" (KvK {kvk})"
    room = OPTION_TEXT_LIMIT - len(suffix)
    escaped = escape(name)
    if len(escaped) > room:
        kept = ""
        for char in name:
            if len(kept) + len(escape(char)) > room - 1:
                break
            kept += escape(char)
        escaped = kept + "…"
    return escaped + suffix


def render_link_picker(
    tenant_id: str, environment: str | None, candidates: Sequence[LinkCandidate], metadata: str
) -> ModalView:
    """The modal that asks which customer approved: customers without a tenant, in order."""
    options = [Option(value=c.kvk, text=option_label(c.name, c.kvk)) for c in candidates[:100]]
    return ModalView(
        type="modal",
        callback_id=View.LINK.value,
        title=PlainTextObject(text=MODAL_TITLE),
        submit=PlainTextObject(text="Link"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=metadata,
        blocks=[
            section(f"Which customer approved tenant `{tenant_id}` ({_environment(environment)})?"),
            InputBlock(
                block_id=PICK_BLOCK,
                label=PlainTextObject(text="Customer"),
                element=StaticSelectElement(
                    action_id=Action.LINK_CUSTOMER.value,
                    placeholder=PlainTextObject(text="Customers without a tenant"),
                    options=options,
                ),
            ),
            context("Newest invitations first. Linking checks the customer at once."),
        ],
    )


def render_linked_answer(customer: Customer, user_id: str) -> Message:
    """Replaces the onboarding-channel question once a person picked the customer."""
    text = (
        f":link: Tenant `{customer.tenant_id}`: Linked to {customer_label(customer)} "
        f"by <@{user_id}>. First check: {state_word(customer.state)}"
    )
    plain = f"Linked to {escape(customer.name)} (KvK {customer.kvk}) by <@{user_id}>"
    return Message(text=plain, blocks=[section(text)])
