"""The alerting work that time drives, run by the scheduler's upkeep tick: reminders while an
incident is open and unacknowledged, announcing the end of snoozes, and opening, updating and
closing upstream incidents. Every step claims its row with a conditional UPDATE and checks
the row count, so two replicas never remind or announce twice."""

from __future__ import annotations

import logging
import math
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.maintenance import in_maintenance
from bot.alerts.render import (
    reminder_note,
    render_customer_snooze_ended,
    snooze_ended_note,
)
from bot.alerts.service import MAX_REMINDERS, Alerts, upstream_key
from bot.domain import Environment
from bot.outbox import enqueue
from storage import incidents
from storage.models import Customer, Incident
from storage.statuses import IncidentKind

log = logging.getLogger(__name__)
UPSTREAM_OUTCOMES = {
    "visma": ("transient", "rate_limited"),
    "brincr": ("ok",),
    "app": ("app_credentials",),
}
UPSTREAM_SHARE = 0.2  # of an environment's linked customers, before Visma/Brincr is to blame
UPSTREAM_MIN = 3


def upstream_threshold(service: str, linked: int) -> int:
    if service == "app":
        return 1  # the app's own credentials refused: one customer is proof enough
    return max(min(UPSTREAM_MIN, linked), math.ceil(linked * UPSTREAM_SHARE))


class AlertUpkeep:
    def __init__(self, alerts: Alerts) -> None:
        self.alerts = alerts
        self.db = alerts.services.db
        self.repeat = alerts.settings.alert_repeat

    async def run(self, now: datetime) -> None:
        await self.reminders(now)
        await self.snooze_ends(now)
        await self.upstream(now)

    # --- reminders ------------------------------------------------------------------

    async def reminders(self, now: datetime) -> int:
        sent = 0
        async with self.db.transaction() as session:
            for incident in await incidents.due_reminders(now, MAX_REMINDERS, session=session):
                if await incidents.claim_reminder(incident, self.repeat, now, session=session):
                    await self._remind(session, incident, now)
                    sent += 1
        return sent

    async def _remind(self, session: AsyncSession, incident: Incident, now: datetime) -> None:
        customer = (
            await session.get(Customer, incident.customer_id) if incident.customer_id else None
        )
        note = reminder_note(incident, customer, now, last=MAX_REMINDERS)
        await self.alerts.reply(session, incident, note)

    # --- snoozes --------------------------------------------------------------------

    async def snooze_ends(self, now: datetime) -> int:
        announced = 0
        async with self.db.transaction() as session:
            for incident in await incidents.snooze_ended_incidents(now, session=session):
                if await incidents.claim_snooze_end(
                    Incident, incident.id, incident.snoozed_until, session=session
                ):
                    customer = await self._customer(session, incident)
                    incident.snoozed_until = None
                    await self.alerts.refresh(session, incident, customer, now)
                    state = customer.state if customer else incident.state
                    await self.alerts.reply(session, incident, snooze_ended_note(state))
                    announced += 1
            for customer in await incidents.snooze_ended_customers(now, session=session):
                if await incidents.claim_snooze_end(
                    Customer, customer.id, customer.snoozed_until, session=session
                ):
                    announced += await self._customer_snooze_ended(session, customer)
        return announced

    async def _customer(self, session: AsyncSession, incident: Incident) -> Customer | None:
        return await session.get(Customer, incident.customer_id) if incident.customer_id else None

    async def _customer_snooze_ended(self, session: AsyncSession, customer: Customer) -> int:
        customer.snoozed_until = None
        if await incidents.open_of_customer(customer.id, session=session) is not None:
            return 0  # announced in the incident's thread
        message = render_customer_snooze_ended(customer)
        await enqueue(
            session, kind="post", text=message.text,
            channel_id=self.alerts.settings.alert_channel_for(customer.environment),
            blocks=message.block_dicts(),
        )  # fmt: skip
        return 1

    # --- upstream outages -----------------------------------------------------------

    async def upstream(self, now: datetime) -> None:
        async with self.db.transaction() as session:
            for env in Environment:
                linked = await incidents.linked_count(env.value, session=session)
                if not linked:
                    continue
                for service, outcomes in UPSTREAM_OUTCOMES.items():
                    affected, reason = await self._affected(session, env, outcomes)
                    threshold = upstream_threshold(service, int(linked))
                    await self._settle(
                        session, f"{service}:{env.value}", affected, threshold, reason, now
                    )

    async def _affected(
        self, session: AsyncSession, env: Environment, outcomes: tuple[str, ...]
    ) -> tuple[int, str | None]:
        count, sample = await incidents.unknown_by_outcome(env.value, outcomes, session=session)
        if sample is None:
            return count, None
        code, text = sample
        return count, f"{code or ''}: {text or ''}".strip(": ") or None

    async def _settle(
        self, session: AsyncSession, key: str, affected: int, threshold: int,
        reason: str | None, now: datetime,
    ) -> None:  # fmt: skip
        incident = await incidents.open_by_key(upstream_key(key), session=session)
        if affected >= threshold and affected > 0:
            if incident is None:
                await self._open_upstream(session, key, affected, reason, now)
            elif incident.affected_count != affected:
                incident.affected_count = affected
                await self.alerts.refresh(session, incident, None, now)
        elif incident is not None and await incidents.close_if_open(
            incident.id, now, session=session
        ):
            await self.alerts.resolve(session, incident, None, now)

    async def _open_upstream(
        self, session: AsyncSession, key: str, affected: int, reason: str | None, now: datetime
    ) -> None:
        if await in_maintenance(session, key.partition(":")[2], now):
            return  # a planned window: announced, not an incident
        incident = Incident(
            kind=IncidentKind.UPSTREAM, upstream_key=key, open_key=upstream_key(key),
            state="unknown",
            reason=reason, affected_count=affected, opened_at=now,
            next_reminder_at=now + self.repeat,
            channel_id=self.alerts.settings.alert_channel_for(key.partition(":")[2]),
        )  # fmt: skip
        if await self.alerts.insert(session, incident):
            await self.alerts.post(session, incident, None, now)
            log.warning("upstream incident %s opened: %s customers affected", key, affected)
