"""On-call alerting: incidents per customer and per upstream outage, each one Slack message
in ``ALERT_CHANNEL`` that is updated in place, with follow-ups in its thread.

Everything here writes outbox rows in the caller's transaction (outbound messages are rows
first): an incident and its message are committed together or not at all, and the sender posts
each once; PagerDuty events (:mod:`bot.alerts.pager`) likewise.

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

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.groups import GroupAlerts
from bot.alerts.holds import AlertHolds
from bot.alerts.maintenance import in_maintenance
from bot.alerts.pager import Pager, incident_environment
from bot.alerts.render import (
    acknowledged_note,
    change_note,
    downtime,
    recovery_note,
    render_followup,
    render_incident,
    render_snooze_note,
    resolved_note,
)
from bot.core.clock import utcnow
from bot.domain import State, format_duration
from bot.domain.outcomes import CheckOutcome
from bot.outbox import enqueue
from bot.services import Services
from bot.slack.blocks import Message
from storage import audit, groups, incidents
from storage.db import forget, once_per_transaction
from storage.incidents import OPEN_INVOLVEMENT
from storage.models import Customer, Incident
from storage.statuses import IncidentKind

log = logging.getLogger(__name__)
BROKEN = {State.SCOPES_MISSING, State.REVOKED, State.FAILING}
MAX_REMINDERS = 3


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
        self.pager = Pager(self.settings)  # PagerDuty events, written with each change
        self.groups = GroupAlerts(self)  # one incident for one cause (bot.alerts.grouping)
        self.holds = AlertHolds(self)  # a new cause's alert waits for its peers (#23)

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
        if state is State.HEALTHY and not await self._involved(session, customer):
            return  # nothing open to resolve: one query per recorded batch, not two per check
        incident = await self._open_incident(session, customer_key(customer.id))
        now = outcome.checked_at
        if state is State.HEALTHY:
            if incident is not None:
                await self.resolve(session, incident, customer, now)
            await self.groups.recovered(session, customer, now)
        elif state in BROKEN:
            if incident is None:
                await self._maybe_open(session, customer, now)
            elif incident.state != state.value or incident.reason != customer.state_reason:
                await self._changed(session, incident, customer, now)

    async def _involved(self, session: AsyncSession, customer: Customer) -> bool:
        """Whether the customer has an open incident of its own or is counted in an open
        group (asked once per transaction; :meth:`insert` and joining a group forget it)."""
        keys, members = await once_per_transaction(
            session, OPEN_INVOLVEMENT, lambda: incidents.open_keys_and_members(session=session)
        )
        return customer_key(customer.id) in keys or customer.id in members

    async def _open_incident(self, session: AsyncSession, key: str) -> Incident | None:
        return await incidents.open_by_key(key, session=session)

    async def _maybe_open(
        self, session: AsyncSession, customer: Customer, now: datetime, *, hold: bool = True
    ) -> str:
        """Open the broken customer's incident, unless something else covers it; returns how
        it ended: ``muted``, ``later`` (no alert channel here), ``group``, ``held`` (its alert
        waits: ``bot.alerts.holds``) or ``single`` (it alerted on its own)."""
        if customer.snoozed_until and customer.snoozed_until > now:
            return "muted"
        if await in_maintenance(session, customer.environment, now):
            return "muted"  # recorded, not alerted: a planned window (bot.alerts.maintenance)
        if customer.state == State.FAILING and await self._upstream_explains(session, customer):
            log.info("alert for %s held back: an upstream incident explains it", customer.kvk)
            return "muted"
        channel = self.settings.alert_channel_for(customer.environment)
        if not channel:
            # A command run without ALERT_CHANNEL (``brincr-bot check`` on an operator's
            # shell) records the state; a serving replica opens the incident at its next check.
            log.info("no alert channel here: the incident for %s opens later", customer.kvk)
            return "later"
        if await self.groups.place(session, customer, now):
            return "group"  # one incident for one cause (bot.alerts.grouping)
        if hold and await self.holds.hold(session, customer, now):
            return "held"  # a new cause waits for its peers (bot.alerts.holds)
        incident = Incident(
            kind=IncidentKind.CUSTOMER, customer_id=customer.id, open_key=customer_key(customer.id),
            state=customer.state, reason=customer.state_reason, opened_at=now,
            next_reminder_at=now + self.settings.alert_repeat, channel_id=channel,
        )  # fmt: skip
        if await self.insert(session, incident):
            await self.post(session, incident, customer, now)
            log.info("incident %s opened for %s: %s", incident.id, customer.kvk, customer.state)
        return "single"

    async def open_now(self, session: AsyncSession, customer: Customer, now: datetime) -> str:
        """A released hold: the ordinary path to an alert, without holding it again."""
        if await self._open_incident(session, customer_key(customer.id)) is not None:
            return "single"  # it alerted on its own meanwhile
        return await self._maybe_open(session, customer, now, hold=False)

    async def forgetting(self, session: AsyncSession, customer: Customer) -> None:
        """Before a customer is removed: resolve its page, leave its group."""
        now = utcnow()
        incident = await self._open_incident(session, customer_key(customer.id))
        if incident is not None:
            await self.pager.resolve(session, incident)
        await self.groups.recovered(session, customer, now)

    async def _render(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> Message:
        if incident.kind == IncidentKind.GROUP:
            return await self.groups.render(session, incident, now)
        return render_incident(incident, customer, now, mention=self.mention(incident, customer))

    async def _upstream_explains(self, session: AsyncSession, customer: Customer) -> bool:
        keys = [upstream_key(f"{s}:{customer.environment}") for s in ("visma", "brincr", "app")]
        return await incidents.any_open(keys, session=session)

    async def insert(self, session: AsyncSession, incident: Incident) -> bool:
        """Add ``incident``; False when another replica opened the same one first."""
        forget(session, OPEN_INVOLVEMENT)
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
        message = await self._render(session, incident, customer, now)
        row = await enqueue(
            session, kind="post", channel_id=self.channel_of(incident), text=message.text,
            blocks=message.block_dicts(), dedupe_key=f"incident:{incident.id}:alert",
        )  # fmt: skip
        incident.root_notification_id = row.id
        await self.pager.trigger(session, incident, customer)

    def channel_of(self, incident: Incident) -> str:
        """The incident's alert channel (production and sandbox may differ)."""
        return incident.channel_id or self.channel

    def mention(self, incident: Incident, customer: Customer | None) -> str:
        """ALERT_MENTION, for production incidents only."""
        if incident_environment(incident, customer) != "production":
            return ""
        return self.settings.alert_mention_text()

    async def refresh(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> None:
        """Update the alert message in place to show the incident as it is now."""
        if incident.root_notification_id is None:
            return
        message = await self._render(session, incident, customer, now)
        await enqueue(
            session, kind="update", channel_id=self.channel_of(incident), text=message.text,
            blocks=message.block_dicts(), target_id=incident.root_notification_id,
        )  # fmt: skip

    async def reply(self, session: AsyncSession, incident: Incident, text: str) -> None:
        if incident.root_notification_id is None:
            return
        message = render_followup(text)
        await enqueue(
            session, kind="reply", channel_id=self.channel_of(incident), text=message.text,
            blocks=message.block_dicts(), target_id=incident.root_notification_id,
        )  # fmt: skip

    async def _changed(
        self, session: AsyncSession, incident: Incident, customer: Customer, now: datetime
    ) -> None:
        was = incident.state
        incident.state, incident.reason = customer.state, customer.state_reason
        await self.refresh(session, incident, customer, now)
        await self.reply(session, incident, change_note(was, customer))

    async def resolve(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> None:
        incident.resolved_at, incident.open_key = now, None
        await self.refresh(session, incident, customer, now)
        await self.pager.resolve(session, incident)
        await self.reply(session, incident, recovery_note(incident, customer, now))
        log.info("incident %s resolved after %s", incident.id, downtime(incident, now))

    # --- buttons ------------------------------------------------------------------------

    async def acknowledge(self, incident_id: int, user_id: str) -> bool:
        """Acknowledge an open incident; False when it was already acknowledged or closed."""
        async with self.services.db.transaction() as session:
            if not await incidents.claim_acknowledge(
                incident_id, user_id, utcnow(), session=session
            ):
                return False
            incident, customer = await self._load(session, incident_id)
            await self.refresh(session, incident, customer, utcnow())
            await self.reply(session, incident, acknowledged_note(user_id))
            await self.pager.acknowledge(session, incident)
            audit.record(
                session, user_id=user_id, action="acknowledge", target=_target(incident, customer)
            )
        self.services.wake_outbox()
        return True

    async def resolve_by_hand(self, incident_id: int, user_id: str) -> bool:
        """Close an open incident now (Resolve button, ``/brincr resolve``); False when it was
        closed already. The customer's next failing check opens a new incident."""
        now = utcnow()
        async with self.services.db.transaction() as session:
            if not await incidents.close_if_open(incident_id, now, session=session):
                return False
            incident, customer = await self._load(session, incident_id)
            await self.refresh(session, incident, customer, now)
            await self.reply(session, incident, resolved_note(user_id))
            await self.pager.resolve(session, incident)
            # A group lets its customers go: still broken, they group again at their next check.
            await groups.release_members(incident_id, session=session)
            audit.record(
                session, user_id=user_id, action="resolve", target=_target(incident, customer)
            )
        self.services.wake_outbox()
        log.info("incident %s resolved by %s", incident_id, user_id)
        return True

    async def open_incident_of(self, customer_id: int) -> int | None:
        """The customer's open incident: its own, or the group it is counted in."""
        async with self.services.db.transaction() as session:
            own = await self._open_incident(session, customer_key(customer_id))
            if own is not None:
                return own.id
            return await groups.open_group_id_of(customer_id, session=session)

    async def snooze_incident(
        self, incident_id: int, duration: timedelta, user_id: str
    ) -> datetime | None:
        """The alert's Snooze menu: mute an open incident (and its customer) until now +
        ``duration``; None when the incident is already resolved."""
        until = utcnow() + duration
        async with self.services.db.transaction() as session:
            incident, customer = await self._load(session, incident_id)
            if incident.resolved_at is not None:
                return None
            if customer is not None:
                customer.snoozed_until, customer.snoozed_by = until, user_id
            await self._snooze_note(session, incident, customer, until, user_id)
            audit.record(session, user_id=user_id, action="snooze",
                         target=_target(incident, customer),
                         detail=f"for {format_duration(duration)} (alert button)")  # fmt: skip
        self.services.wake_outbox()
        return until

    async def snooze_customer(
        self, customer_id: int, duration: timedelta | None, user_id: str
    ) -> datetime | None:
        """``/brincr snooze`` (a duration) and ``unsnooze`` (None): the customer's alerts are
        muted until the returned moment; its open incident, if any, shows it."""
        until = utcnow() + duration if duration is not None else None
        async with self.services.db.transaction() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise LookupError(f"customer {customer_id} does not exist")
            customer.snoozed_until, customer.snoozed_by = until, (user_id if until else None)
            incident = await self._open_incident(session, customer_key(customer.id))
            if incident is not None:
                await self._snooze_note(session, incident, customer, until, user_id)
            if duration is None:
                audit.record(session, user_id=user_id, action="unsnooze", target=customer.kvk)
            else:
                audit.record(session, user_id=user_id, action="snooze", target=customer.kvk,
                             detail=f"for {format_duration(duration)}")  # fmt: skip
        self.services.wake_outbox()
        return until

    async def _snooze_note(
        self,
        session: AsyncSession,
        incident: Incident,
        customer: Customer | None,
        until: datetime | None,
        user_id: str,
    ) -> None:
        """The one place a snooze changes an incident: its fields, its message, a thread note."""
        incident.snoozed_until, incident.snoozed_by = until, (user_id if until else None)
        await self.refresh(session, incident, customer, utcnow())
        await self.reply(session, incident, render_snooze_note(user_id, until))

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


def _target(incident: Incident, customer: Customer | None) -> str:
    """What an audit entry about ``incident`` names: the customer's KvK, else the upstream."""
    return customer.kvk if customer else (incident.upstream_key or f"incident {incident.id}")
