"""The alerting work that time drives, run by the scheduler's upkeep tick: reminders while an
incident is open and unacknowledged, announcing the end of snoozes, and opening, updating and
closing upstream incidents. Every step claims its row with a conditional UPDATE and checks
the row count, so two replicas never remind or announce twice."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.render import downtime, render_followup, upstream_title
from bot.alerts.service import MAX_REMINDERS, Alerts, upstream_key
from bot.domain import Environment, State
from bot.outbox import enqueue
from bot.slack.text import escape
from storage.db import affected_rows
from storage.models import CheckResult, Customer, Incident
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
            due = await session.scalars(
                select(Incident).where(
                    Incident.resolved_at.is_(None), Incident.acknowledged_by.is_(None),
                    Incident.next_reminder_at <= now, Incident.reminders_sent < MAX_REMINDERS,
                    or_(Incident.snoozed_until.is_(None), Incident.snoozed_until <= now),
                ).limit(200)
            )  # fmt: skip
            for incident in due.all():
                if await self._claim_reminder(session, incident, now):
                    await self._remind(session, incident, now)
                    sent += 1
        return sent

    async def _claim_reminder(
        self, session: AsyncSession, incident: Incident, now: datetime
    ) -> bool:
        done = await session.execute(
            update(Incident)
            .where(Incident.id == incident.id, Incident.reminders_sent == incident.reminders_sent)
            .values(reminders_sent=incident.reminders_sent + 1, next_reminder_at=now + self.repeat)
            .execution_options(synchronize_session=False)
        )
        if affected_rows(done) != 1:
            return False
        incident.reminders_sent += 1
        return True

    async def _remind(self, session: AsyncSession, incident: Incident, now: datetime) -> None:
        customer = (
            await session.get(Customer, incident.customer_id) if incident.customer_id else None
        )
        who = (
            f"*{escape(customer.name)}*"
            if customer
            else upstream_title(incident.upstream_key or "")
        )
        text = (
            f":bell: Reminder {incident.reminders_sent}/{MAX_REMINDERS}: {who} is still "
            f"{incident.state} after {downtime(incident, now)}, and nobody has acknowledged it."
        )
        manager = customer.account_manager if customer else None
        if manager and manager[:1] in "UW" and manager.isalnum():
            text += f" <@{manager}>"
        if incident.reminders_sent >= MAX_REMINDERS:
            text += " This is the last reminder."
        await self.alerts.reply(session, incident, text)

    # --- snoozes --------------------------------------------------------------------

    async def snooze_ends(self, now: datetime) -> int:
        announced = 0
        async with self.db.transaction() as session:
            incidents = await session.scalars(
                select(Incident).where(
                    Incident.resolved_at.is_(None), Incident.snoozed_until <= now
                )
            )
            for incident in incidents.all():
                if await self._clear(session, Incident, incident.id, incident.snoozed_until):
                    customer = await self._customer(session, incident)
                    incident.snoozed_until = None
                    await self.alerts.refresh(session, incident, customer, now)
                    state = customer.state if customer else incident.state
                    await self.alerts.reply(
                        session, incident, f":bell: Snooze ended: still *{state}*."
                    )
                    announced += 1
            customers = await session.scalars(select(Customer).where(Customer.snoozed_until <= now))
            for customer in customers.all():
                if await self._clear(session, Customer, customer.id, customer.snoozed_until):
                    announced += await self._customer_snooze_ended(session, customer)
        return announced

    async def _clear(self, session: AsyncSession, model: Any, row_id: int, until: Any) -> bool:
        done = await session.execute(
            update(model)
            .where(model.id == row_id, model.snoozed_until == until)
            .values(snoozed_until=None)
            .execution_options(synchronize_session=False)
        )
        return affected_rows(done) == 1

    async def _customer(self, session: AsyncSession, incident: Incident) -> Customer | None:
        return await session.get(Customer, incident.customer_id) if incident.customer_id else None

    async def _customer_snooze_ended(self, session: AsyncSession, customer: Customer) -> int:
        customer.snoozed_until = None
        open_one = await session.scalar(
            select(Incident.id).where(
                Incident.customer_id == customer.id, Incident.resolved_at.is_(None)
            )
        )
        if open_one is not None:
            return 0  # announced in the incident's thread
        message = render_followup(
            f":bell: Snooze for *{escape(customer.name)}* (KvK {customer.kvk}) ended: "
            f"it is *{customer.state}*."
        )
        await enqueue(
            session, kind="post", channel_id=self.alerts.channel, text=message.text,
            blocks=message.block_dicts(),
        )  # fmt: skip
        return 1

    # --- upstream outages -----------------------------------------------------------

    async def upstream(self, now: datetime) -> None:
        async with self.db.transaction() as session:
            for env in Environment:
                linked = await session.scalar(
                    select(func.count()).select_from(Customer)
                    .where(Customer.environment == env.value, Customer.tenant_id.is_not(None))
                )  # fmt: skip
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
        where = and_(
            Customer.environment == env.value,
            Customer.state == State.UNKNOWN.value,
            CheckResult.token_outcome.in_(outcomes),
        )
        joined = (
            select(func.count())
            .select_from(Customer)
            .join(CheckResult, CheckResult.id == Customer.last_result_id)
        )
        count = int(await session.scalar(joined.where(where)) or 0)
        if not count:
            return 0, None
        sample = await session.execute(
            select(CheckResult.error_code, CheckResult.error_text)
            .join(Customer, CheckResult.id == Customer.last_result_id).where(where).limit(1)
        )  # fmt: skip
        code, text = sample.one()
        return count, f"{code or ''}: {text or ''}".strip(": ") or None

    async def _settle(
        self, session: AsyncSession, key: str, affected: int, threshold: int,
        reason: str | None, now: datetime,
    ) -> None:  # fmt: skip
        incident = await session.scalar(
            select(Incident).where(Incident.open_key == upstream_key(key))
        )
        if affected >= threshold and affected > 0:
            if incident is None:
                await self._open_upstream(session, key, affected, reason, now)
            elif incident.affected_count != affected:
                incident.affected_count = affected
                await self.alerts.refresh(session, incident, None, now)
        elif incident is not None:
            done = await session.execute(
                update(Incident).where(Incident.id == incident.id, Incident.resolved_at.is_(None))
                .values(resolved_at=now, open_key=None)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if affected_rows(done) == 1:
                await self.alerts.resolve(session, incident, None, now)

    async def _open_upstream(
        self, session: AsyncSession, key: str, affected: int, reason: str | None, now: datetime
    ) -> None:
        incident = Incident(
            kind=IncidentKind.UPSTREAM, upstream_key=key, open_key=upstream_key(key),
            state="unknown",
            reason=reason, affected_count=affected, opened_at=now,
            next_reminder_at=now + self.repeat, channel_id=self.alerts.channel,
        )  # fmt: skip
        if await self.alerts.insert(session, incident):
            await self.alerts.post(session, incident, None, now)
            log.warning("upstream incident %s opened: %s customers affected", key, affected)
