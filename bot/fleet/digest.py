"""The weekly digest: what support should act on this week, posted to ``DIGEST_CHANNEL``
at ``DIGEST_SCHEDULE`` (in ``TIMEZONE``) and by ``/brincr digest``.

Built from stored state only (no check, no upstream request): counts per state and their
change since a week ago, the customers needing action grouped by what to do, and the
week's incidents with their downtime (renderer: bot/fleet/render_digest.py).

Once per schedule across replicas: each replica's scheduler ticks every minute; the one whose
``INSERT`` of the slot's ``kv`` row (``digest:<slot>``) succeeds enqueues the message in the
same transaction, so a crash after the claim loses nothing and no replica posts twice.
A slot missed for longer than ``GRACE`` (the bot was down all morning) is skipped, not
posted late.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import State
from bot.domain.weekly import parse_weekly
from bot.fleet.digest_data import DigestData, WeekIncident
from bot.fleet.render_digest import render_digest
from bot.outbox import enqueue
from bot.services import Services
from storage.facts import counts_by_state, rollout_pending
from storage.models import Customer, Invitation
from storage.reporting import (
    claim_key,
    counts_at,
    customers_in,
    incidents_since,
    waiting_invitations,
)

log = logging.getLogger(__name__)
WEEK = timedelta(days=7)
GRACE = timedelta(hours=6)
TICK_EVERY = timedelta(minutes=1)  # the scheduler's Job for digest_tick (bot/composition.py)
NO_CHANNEL = "set `DIGEST_CHANNEL` to the channel ID the digest goes to"


async def build_digest(
    session: AsyncSession, now: datetime, *, stale_after: timedelta
) -> DigestData:
    """The digest for the week ending at ``now``."""
    since = now - WEEK
    counts = await counts_by_state(session=session)
    before = await counts_at(since, session=session)
    missing = await customers_in([State.SCOPES_MISSING.value], session=session)
    revoked = await customers_in([State.REVOKED.value], session=session)
    invitations = await waiting_invitations(now - stale_after, session=session)
    incidents = await incidents_since(since, session=session)
    waiting: dict[str, list[tuple[Invitation, Customer]]] = defaultdict(list)
    for invitation, customer in invitations:
        waiting[customer.account_manager or invitation.invited_by].append((invitation, customer))
    week = [
        WeekIncident(i, c, (i.resolved_at or now) - max(i.opened_at, since), i.resolved_at is None)
        for i, c in incidents
        if i.opened_at < now
    ]
    pending = await rollout_pending(session=session)
    return DigestData(now, since, counts, before, missing, revoked, dict(waiting), week, pending)


async def post_digest(services: Services, now: datetime, *, slot: str | None = None) -> bool:
    """Enqueue the digest for ``DIGEST_CHANNEL``. With ``slot`` (a scheduled post) only when
    this caller claims the slot; returns whether a digest was enqueued."""
    settings = services.settings
    channel = settings.digest_channel
    if not channel:
        raise UserError("No digest channel is set.", usage=NO_CHANNEL)
    async with services.db.transaction() as session:
        if slot is not None and not await claim_key(f"digest:{slot}", "posted", session=session,
                                                    now=now):  # fmt: skip
            return False
        data = await build_digest(session, now, stale_after=settings.invite_stale_after)
        message = render_digest(data, settings.tz)
        await enqueue(session, kind="post", channel_id=channel, text=message.text,
                      blocks=message.block_dicts())  # fmt: skip
    services.wake_outbox()
    log.info("digest enqueued for %s%s", channel, f" (slot {slot})" if slot else " (by hand)")
    return True


async def digest_tick(services: Services, now: datetime | None = None) -> bool:
    """One scheduler tick: post the digest of the current slot if it is due and unclaimed."""
    settings = services.settings
    if not settings.digest_channel:
        return False
    now = now or utcnow()
    slot = parse_weekly(settings.digest_schedule).last_slot(now, settings.tz)
    if now - slot > GRACE:
        return False
    return await post_digest(services, now, slot=slot.isoformat())
