"""Invitations: ``/brincr invite`` records one and posts the customer-ready hand-off; checks
track it to approval; a scheduled tick reminds the inviter of one left unapproved.

- :func:`invite`: customer (new, state ``invited``, or reused: a
  linked customer keeps its state, that is a reconnect), invitation, audit entry and the
  hand-off outbox row, in one transaction. An older open invitation of the customer is
  cancelled: only the newest one is tracked.
- :func:`tracker`: a check listener. A healthy check approves the open invitation and updates
  the hand-off in place (plus a thread reply to the inviter); missing scopes update it to
  "partly approved" whenever the missing set changes. Dedupe keys keep repeats silent.
- :func:`nudge_stale_invitations`: claims stale invitations with a conditional UPDATE (two
  replicas never both nudge) and DMs each inviter once.
- :func:`resend_handoff`, :func:`send_reconnect`: the hand-off again, in a thread.

Invitation codes are never logged, audited or put in error text (docs/security.md).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.checks.recording import CheckListener
from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import Environment, State
from bot.domain.outcomes import CheckOutcome
from bot.onboarding.forms import (  # noqa: F401 - re-exported for the handlers
    InvalidInvite,
    InviteForm,
    clean_code,
    parse_invite_form,
    parse_short_invite,
)
from bot.onboarding.reapproval import render_reapproval
from bot.onboarding.render import (
    HandoffStatus,
    render_approved_reply,
    render_handoff,
    render_stale_dm,
)
from bot.outbox import Kind, enqueue
from bot.services import Services
from bot.slack.blocks import Message
from storage import audit, invitations
from storage.customers import NewCustomer, add_customer, get_by_kvk
from storage.db import once_per_transaction
from storage.models import Customer, Invitation, Notification
from storage.reads import HANDED_OFF, customers_with_handed_off_invitations, open_invitation
from storage.statuses import InvitationStatus

log = logging.getLogger(__name__)

OPEN, APPROVED = InvitationStatus.OPEN, InvitationStatus.APPROVED
STALE_BATCH = 100
STALE_EVERY = timedelta(minutes=15)


# --- creating an invitation -------------------------------------------------------------


@dataclass(frozen=True)
class Invited:
    invitation: Invitation
    customer: Customer
    created: bool  # the customer is new


async def invite(
    services: Services, form: InviteForm, *, invited_by: str, channel_id: str
) -> Invited:
    """One transaction: the customer, the invitation, an audit entry and the hand-off post to
    ``channel_id`` (a DM to the inviter when there is none). Then wakes the sender."""
    channel = channel_id or invited_by
    async with services.db.transaction() as session:
        customer, created = await _customer_for(session, form, invited_by)
        await invitations.cancel_open(customer.id, session=session)
        previous = await invitations.latest(customer.id, session=session)
        invitation = Invitation(
            customer_id=customer.id, code=form.code, contact=form.contact, invited_by=invited_by,
            language=form.language or (previous.language if previous else "nl"),
            created_at=utcnow(), status=OPEN, channel_id=channel,
        )  # fmt: skip
        session.add(invitation)
        await session.flush()
        message = render_handoff(invitation, customer, services.settings.requested_scopes)
        row = await _send(session, message, channel=channel, key=f"handoff:{invitation.id}")
        invitation.handoff_notification_id = row.id
        what = "new customer" if created else ("reconnect" if customer.tenant_id else "again")
        detail = f"{customer.environment}, {invitation.language}, {what}"
        audit.record(session, user_id=invited_by, action="invite", target=form.kvk, detail=detail)
    log.info("invitation %s for %s (%s) by %s", invitation.id, form.kvk, what, invited_by)
    services.wake_outbox()
    return Invited(invitation, customer, created)


async def _customer_for(
    session: AsyncSession, form: InviteForm, invited_by: str
) -> tuple[Customer, bool]:
    customer = await get_by_kvk(form.kvk, session=session)
    if customer is None:
        name, environment = form.name or f"KvK {form.kvk}", form.environment
        new = NewCustomer(form.kvk, name, environment or Environment.PRODUCTION, None, invited_by)
        return await add_customer(new, session=session, state=State.INVITED), True
    if form.name:
        customer.name = form.name
    if form.environment and customer.tenant_id is None:  # a linked tenant fixes it
        customer.environment = form.environment.value
    customer.account_manager = customer.account_manager or invited_by
    return customer, False


async def _send(
    session: AsyncSession,
    message: Message,
    *,
    channel: str,
    target: int | None = None,
    update_target: bool = False,
    key: str | None = None,
) -> Notification:
    """A post to ``channel`` (a DM for a user ID); with ``target`` (an outbox row) a reply in
    its thread, or with ``update_target`` a new version of its message."""
    kind: Kind = "dm" if channel[:1] in ("U", "W") else "post"
    if target is not None:
        kind = "update" if update_target else "reply"
    return await enqueue(
        session, kind=kind, channel_id=channel, text=message.text,
        blocks=message.block_dicts(), target_id=target, dedupe_key=key,
    )  # fmt: skip


# --- tracking approval ------------------------------------------------------------------


def tracker(services: Services) -> CheckListener:
    """The check listener that follows open invitations to approval (it runs in the check's
    transaction: :data:`~bot.checks.recording.CheckListener`). A healthy check of a customer
    that was healthy already costs no query: approval is a change of state (an invitation
    sent to a customer that stays healthy is left to the stale-invitation reminder)."""
    scopes = services.settings.requested_scopes  # the hand-off lists them all

    async def track(
        session: AsyncSession, customer: Customer, outcome: CheckOutcome, previous: str
    ) -> None:
        if outcome.state not in (State.HEALTHY, State.SCOPES_MISSING):
            return
        if outcome.healthy and previous == State.HEALTHY:
            return
        handed_off = await once_per_transaction(
            session, HANDED_OFF, lambda: customers_with_handed_off_invitations(session=session)
        )
        if customer.id not in handed_off:
            return  # no invitation to report on: one query per recorded batch, not per check
        invitation = await open_invitation(customer.id, session=session)
        if invitation is None or invitation.handoff_notification_id is None:
            return
        if outcome.healthy:
            await _approved(session, invitation, customer, scopes, outcome.checked_at)
        else:
            await _partial(session, invitation, customer, scopes, outcome.missing_scopes)

    return track


async def _approved(
    session: AsyncSession,
    invitation: Invitation,
    customer: Customer,
    scopes: Sequence[str],
    when: datetime,
) -> None:
    if not await invitations.claim_approval(invitation.id, when, session=session):
        return
    await session.refresh(invitation)
    channel, handoff = invitation.channel_id or "", invitation.handoff_notification_id
    message = render_handoff(invitation, customer, scopes, status="approved")
    await _send(session, message, channel=channel, target=handoff, update_target=True,
                key=f"handoff-approved:{invitation.id}")  # fmt: skip
    await _send(session, render_approved_reply(invitation, customer), channel=channel,
                target=handoff, key=f"handoff-approved-reply:{invitation.id}")  # fmt: skip
    log.info("invitation %s for %s approved", invitation.id, customer.kvk)


def _partial_key(invitation_id: int, missing: Sequence[str]) -> str:
    names = "+".join(sorted(missing))
    if len(names) > 120:  # dedupe_key holds 200 characters
        names = "sha256-" + hashlib.sha256(names.encode()).hexdigest()[:24]
    return f"handoff-partial:{invitation_id}:{names}"


async def _partial(
    session: AsyncSession,
    invitation: Invitation,
    customer: Customer,
    scopes: Sequence[str],
    missing: Sequence[str],
) -> None:
    """Update the hand-off when the missing set differs from the last partial update; a set
    seen before (A, B, A) gets a key naming the update it follows, so it is shown again."""
    key = _partial_key(invitation.id, missing)
    previous = await invitations.last_partial_update(invitation.id, session=session)
    if previous is not None:
        previous_id, previous_key = previous
        if previous_key.split("#")[0] == key:
            return
        key = f"{key}#{previous_id}"
    message = render_handoff(invitation, customer, scopes, status="partial", missing=missing)
    await _send(session, message, channel=invitation.channel_id or "",
                target=invitation.handoff_notification_id, update_target=True, key=key)  # fmt: skip
    log.info("invitation %s for %s partly approved", invitation.id, customer.kvk)


# --- stale invitations ------------------------------------------------------------------


async def nudge_stale_invitations(services: Services, now: datetime) -> int:
    """DM the inviter of each invitation still open ``INVITE_STALE_AFTER`` after it was sent,
    once. Each is claimed with a conditional UPDATE in the transaction that enqueues its DM,
    so two replicas never both nudge. Returns how many were nudged."""
    cutoff = now - services.settings.invite_stale_after
    async with services.db.transaction() as session:
        ids = await invitations.stale_ids(cutoff, session=session, limit=STALE_BATCH)
    nudged = 0
    for invitation_id in ids:
        nudged += await _nudge(services, invitation_id, now)
    if nudged:
        services.wake_outbox()
    return nudged


async def _nudge(services: Services, invitation_id: int, now: datetime) -> int:
    async with services.db.transaction() as session:
        if not await invitations.claim_nudge(invitation_id, now, session=session):
            return 0
        invitation = await session.get_one(Invitation, invitation_id)
        customer = await session.get_one(Customer, invitation.customer_id)
        message = render_stale_dm(invitation, customer, services.settings.invite_stale_after)
        await _send(session, message, channel=invitation.invited_by,
                    key=f"invite-stale:{invitation_id}")  # fmt: skip
    log.info("stale invitation %s for %s: nudged %s", invitation_id, customer.kvk,
             invitation.invited_by)  # fmt: skip
    return 1


# --- the hand-off again -----------------------------------------------------------------


async def _pair(session: AsyncSession, invitation_id: int) -> tuple[Invitation, Customer]:
    invitation = await session.get(Invitation, invitation_id)
    customer = await session.get(Customer, invitation.customer_id) if invitation else None
    if invitation is None or customer is None:
        raise UserError("That invitation no longer exists: was the customer removed?")
    return invitation, customer


async def load_invitation(services: Services, invitation_id: int) -> tuple[Invitation, Customer]:
    """An invitation and its customer (UserError when gone, e.g. the customer was removed)."""
    async with services.db.transaction() as session:
        return await _pair(session, invitation_id)


async def resend_handoff(services: Services, invitation_id: int, *, user_id: str) -> Invitation:
    """Post the hand-off again as a reply in the original hand-off's thread."""
    async with services.db.transaction() as session:
        invitation, customer = await _pair(session, invitation_id)
        status: HandoffStatus = "approved" if invitation.status == APPROVED else "waiting"
        message = render_handoff(
            invitation, customer, services.settings.requested_scopes, status=status,
            resent_by=user_id,
        )  # fmt: skip
        channel = invitation.channel_id or invitation.invited_by
        await _send(session, message, channel=channel, target=invitation.handoff_notification_id)
        audit.record(session, user_id=user_id, action="invite-resend", target=customer.kvk)
    log.info("invitation %s for %s sent again by %s", invitation_id, customer.kvk, user_id)
    services.wake_outbox()
    return invitation


async def has_invitation(services: Services, customer_id: int) -> bool:
    async with services.db.transaction() as session:
        return await invitations.latest(customer_id, session=session) is not None


async def send_reconnect(
    services: Services,
    customer_id: int,
    *,
    user_id: str,
    channel_id: str,
    thread_target_id: int | None,
) -> bool:
    """Re-post the customer's latest hand-off: a reply in the thread of outbox row
    ``thread_target_id`` (an alert) when given, else a post in ``channel_id``. False when
    the customer does not exist. Without an invitation on record the re-approval steps
    (App Store → My apps → switch the scopes ON) go out instead (``bot.onboarding.reapproval``)."""
    async with services.db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            return False
        invitation = await invitations.latest(customer_id, session=session)
        if invitation is None:
            scopes = customer.missing_scopes.split() or list(services.settings.brincr_scopes)
            message = render_reapproval(customer, scopes, sent_by=user_id)
        else:
            message = render_handoff(
                invitation, customer, services.settings.requested_scopes, resent_by=user_id
            )
        await _send(session, message, channel=channel_id, target=thread_target_id)
        audit.record(session, user_id=user_id, action="reconnect-instructions", target=customer.kvk)
    log.info("reconnect instructions for %s sent by %s", customer.kvk, user_id)
    services.wake_outbox()
    return True
