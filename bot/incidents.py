"""On-call alerting: incidents per customer and per upstream outage, each one Slack message
in ``ALERT_CHANNEL`` that is updated in place, with follow-ups in its thread.

Everything here writes outbox rows in the caller's transaction (STYLE.md §10): an incident
and its message are committed together or not at all, and the sender posts each once.

- A customer incident opens when the customer goes ``scopes_missing`` or ``revoked`` (at
  once) or ``failing`` (the recording already applied ``FAILURE_THRESHOLD``), and resolves
  after one healthy check. ``unknown`` (Visma/Brincr trouble) never opens one.
- An upstream incident (``visma:<env>``, ``brincr:<env>``, ``app:<env>``) opens when many
  customers of an environment are ``unknown`` for the same reason, or when Visma refuses the
  app's own credentials; while it is open, ``failing`` customers of that environment are held
  back. When it clears, customers still broken alert on their own at their next check.
- One open incident per customer or upstream is enforced by a unique ``open_key``; inserts run
  in a savepoint so a race between replicas never rolls back a batch of recorded checks.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import utcnow
from bot.domain import State, format_duration
from bot.health import CheckOutcome
from bot.outbox import enqueue
from bot.render_alerts import downtime, render_followup, render_incident, upstream_title
from bot.services import Services
from bot.slack_text import date, escape
from storage import audit
from storage.db import affected_rows
from storage.models import Customer, Incident

log = logging.getLogger(__name__)
BROKEN = {State.SCOPES_MISSING, State.REVOKED, State.FAILING}
MAX_REMINDERS = 3


def _audit_target(incident: Incident, customer: Customer | None) -> str | None:
    """The audit log's target: the customer's KvK, or the upstream key for an outage."""
    return customer.kvk if customer else incident.upstream_key


def customer_key(customer_id: int) -> str:
    return f"customer:{customer_id}"


def upstream_key(key: str) -> str:
    return f"upstream:{key}"


class Alerts:
    """The incident service. ``on_check`` is a check listener; the rest is called by the
    buttons (acknowledge, snooze) and by the scheduler's maintenance tick."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    @property
    def channel(self) -> str:
        return self.settings.alert_channel or ""

    # --- after each check -----------------------------------------------------------

    async def on_check(
        self, session: AsyncSession, customer: Customer, outcome: CheckOutcome, previous: str
    ) -> None:
        state = State(customer.state)
        if state is State.UNKNOWN or (state is State.HEALTHY and previous == State.HEALTHY):
            return  # the common cases cost no query
        incident = await self._open_incident(session, customer_key(customer.id))
        now = outcome.checked_at
        if state is State.HEALTHY:
            if incident is not None:
                await self.resolve(session, incident, customer, now)
        elif state in BROKEN:
            if incident is None:
                await self._maybe_open(session, customer, now)
            elif incident.state != state.value or incident.reason != customer.state_reason:
                await self._changed(session, incident, customer, now)

    async def _open_incident(self, session: AsyncSession, key: str) -> Incident | None:
        return await session.scalar(select(Incident).where(Incident.open_key == key))

    async def _maybe_open(self, session: AsyncSession, customer: Customer, now: datetime) -> None:
        if customer.snoozed_until and customer.snoozed_until > now:
            return
        if customer.state == State.FAILING and await self._upstream_explains(session, customer):
            log.info("alert for %s held back: an upstream incident explains it", customer.kvk)
            return
        incident = Incident(
            kind="customer", customer_id=customer.id, open_key=customer_key(customer.id),
            state=customer.state, reason=customer.state_reason, opened_at=now,
            next_reminder_at=now + self.settings.alert_repeat, channel_id=self.channel,
        )  # fmt: skip
        if await self.insert(session, incident):
            await self.post(session, incident, customer, now)
            log.info("incident %s opened for %s: %s", incident.id, customer.kvk, customer.state)

    async def _upstream_explains(self, session: AsyncSession, customer: Customer) -> bool:
        keys = [upstream_key(f"{s}:{customer.environment}") for s in ("visma", "brincr", "app")]
        found = await session.scalar(select(Incident.id).where(Incident.open_key.in_(keys)))
        return found is not None

    async def insert(self, session: AsyncSession, incident: Incident) -> bool:
        """Add ``incident``; False when another replica opened the same one first."""
        try:
            async with session.begin_nested():
                session.add(incident)
                await session.flush()
        except IntegrityError:
            return False
        return True

    async def post(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> None:
        message = render_incident(incident, customer, now)
        row = await enqueue(
            session, kind="post", channel_id=self.channel, text=message.text,
            blocks=message.block_dicts(), dedupe_key=f"incident:{incident.id}:alert",
        )  # fmt: skip
        incident.root_notification_id = row.id

    async def refresh(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> None:
        """Update the alert message in place to show the incident as it is now."""
        if incident.root_notification_id is None:
            return
        message = render_incident(incident, customer, now)
        await enqueue(
            session, kind="update", channel_id=self.channel, text=message.text,
            blocks=message.block_dicts(), target_id=incident.root_notification_id,
        )  # fmt: skip

    async def reply(self, session: AsyncSession, incident: Incident, text: str) -> None:
        if incident.root_notification_id is None:
            return
        message = render_followup(text)
        await enqueue(
            session, kind="reply", channel_id=self.channel, text=message.text,
            blocks=message.block_dicts(), target_id=incident.root_notification_id,
        )  # fmt: skip

    async def _changed(
        self, session: AsyncSession, incident: Incident, customer: Customer, now: datetime
    ) -> None:
        was = incident.state
        incident.state, incident.reason = customer.state, customer.state_reason
        await self.refresh(session, incident, customer, now)
        detail = escape((customer.state_reason or "")[:500])
        await self.reply(session, incident, f"Now *{customer.state}* (was {was}): {detail}")

    async def resolve(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> None:
        incident.resolved_at, incident.open_key = now, None
        await self.refresh(session, incident, customer, now)
        who = (
            f"*{escape(customer.name)}*"
            if customer
            else upstream_title(incident.upstream_key or "")
        )
        await self.reply(
            session,
            incident,
            f":white_check_mark: {who} recovered after {downtime(incident, now)}.",
        )
        log.info("incident %s resolved after %s", incident.id, downtime(incident, now))

    # --- buttons ------------------------------------------------------------------------

    async def acknowledge(self, incident_id: int, user_id: str) -> bool:
        """Acknowledge an open incident; False when it was already acknowledged or closed."""
        async with self.services.db.transaction() as session:
            done = await session.execute(
                update(Incident)
                .where(Incident.id == incident_id, Incident.resolved_at.is_(None),
                       Incident.acknowledged_by.is_(None))
                .values(acknowledged_by=user_id, acknowledged_at=utcnow())
            )  # fmt: skip
            if affected_rows(done) != 1:
                return False
            incident, customer = await self._load(session, incident_id)
            await self.refresh(session, incident, customer, utcnow())
            await self.reply(session, incident, f"Acknowledged by <@{user_id}>; reminders stop.")
            audit.record(session, user_id=user_id, action="acknowledge",
                         target=_audit_target(incident, customer),
                         detail=f"incident {incident.id}: {incident.state}")  # fmt: skip
        return True

    async def snooze(self, incident_id: int, duration: timedelta, user_id: str) -> datetime | None:
        """Mute an open incident (and its customer) until now + ``duration``."""
        until = utcnow() + duration
        async with self.services.db.transaction() as session:
            incident, customer = await self._load(session, incident_id)
            if incident.resolved_at is not None:
                return None
            incident.snoozed_until, incident.snoozed_by = until, user_id
            if customer is not None:
                customer.snoozed_until, customer.snoozed_by = until, user_id
            await self.refresh(session, incident, customer, utcnow())
            await self.reply(
                session, incident, f":zzz: Snoozed by <@{user_id}> until {date(until)}."
            )
            audit.record(session, user_id=user_id, action="snooze",
                         target=_audit_target(incident, customer),
                         detail=f"for {format_duration(duration)} (from the alert)")  # fmt: skip
        return until

    async def root_notification(self, customer_id: int) -> int | None:
        """The outbox row of the customer's open alert (its thread takes follow-ups)."""
        async with self.services.db.transaction() as session:
            incident = await self._open_incident(session, customer_key(customer_id))
            return incident.root_notification_id if incident else None

    async def _load(
        self, session: AsyncSession, incident_id: int
    ) -> tuple[Incident, Customer | None]:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise LookupError(f"incident {incident_id} does not exist")
        customer = (
            await session.get(Customer, incident.customer_id) if incident.customer_id else None
        )
        return incident, customer
