"""What support and account managers ask of the fleet: one customer's status, the list, the
App Home, and the admin changes (snooze, forget). Handlers call these; they return domain
data, never Block Kit (the renderers in ``bot.render`` turn it into messages)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import utcnow
from bot.domain import format_duration, normalize_kvk
from bot.errors import UserError
from bot.services import Services
from bot.slack_text import date
from storage import audit
from storage.customers import find_customer, get_by_kvk
from storage.models import Customer, Incident
from storage.reads import (
    LIST_FILTERS,
    FleetPage,
    HomeData,
    StatusData,
    fleet_page,
    home_data,
    open_incident,
)
from storage.reads import status_data as read_status

log = logging.getLogger(__name__)
MAX_SNOOZE = timedelta(days=30)
LIST_USAGE = "`/brincr list [failing|pending|revoked|all]`"


class Fleet:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db

    async def status(self, query: str) -> StatusData:
        """The status of the customer ``query`` names (UserError when none or several)."""
        async with self.db.transaction() as session:
            customer = await find_customer(query, session=session)
            return await read_status(customer, session=session, now=utcnow())

    async def check(self, query: str, user_id: str | None = None) -> StatusData:
        """Check the named customer now, record it like a scheduled check, return its status.
        ``user_id``: the person who asked (audited as a check by hand)."""
        async with self.db.transaction() as session:
            customer = await find_customer(query, session=session)
            if user_id:
                audit.record(session, user_id=user_id, action="check", target=customer.kvk)
        await self.services.checker.check_customer(customer.id)
        return await self.status(customer.kvk)

    async def page(self, which: str, offset: int, limit: int) -> FleetPage:
        if which not in LIST_FILTERS:
            raise UserError(f"`{which[:20]}` is not a list", usage=LIST_USAGE)
        async with self.db.transaction() as session:
            return await fleet_page(
                LIST_FILTERS[which],
                session=session,
                now=utcnow(),
                offset=max(0, offset),
                limit=limit,
            )

    async def home(self) -> HomeData:
        async with self.db.transaction() as session:
            return await home_data(session=session, now=utcnow())

    async def resolve(self, query: str) -> Customer:
        async with self.db.transaction() as session:
            return await find_customer(query, session=session)

    async def forget(self, kvk: str, user_id: str) -> Customer | None:
        """Remove a customer and its history; None when it was already gone."""
        number = normalize_kvk(kvk)
        async with self.db.transaction() as session:
            customer = await get_by_kvk(number, session=session) if number else None
            if customer is None:
                return None
            await session.execute(delete(Incident).where(Incident.customer_id == customer.id))
            await session.delete(customer)
            audit.record(
                session,
                user_id=user_id,
                action="forget",
                target=customer.kvk,
                detail=f"removed {customer.name} ({customer.environment})",
            )
        log.info("customer %s forgotten by %s", customer.kvk, user_id)
        return customer

    async def snooze(self, query: str, duration: timedelta, user_id: str) -> datetime:
        """Mute alerts for a customer until now + ``duration``; returns that moment."""
        if duration > MAX_SNOOZE:
            raise UserError(
                f"{format_duration(duration)} is longer than the 30 days a snooze may last",
                usage="`/brincr snooze <customer> <duration>`, e.g. `4h`, `1d` or `1w`",
            )
        until = utcnow() + duration
        async with self.db.transaction() as session:
            customer = await find_customer(query, session=session)
            customer.snoozed_until = until
            customer.snoozed_by = user_id
            await self._snooze_incident(session, customer, until, user_id)
            audit.record(
                session, user_id=user_id, action="snooze", target=customer.kvk,
                detail=f"for {format_duration(duration)}",
            )  # fmt: skip
        return until

    async def unsnooze(self, query: str, user_id: str) -> Customer:
        async with self.db.transaction() as session:
            customer = await find_customer(query, session=session)
            customer.snoozed_until = None
            customer.snoozed_by = None
            await self._snooze_incident(session, customer, None, user_id)
            audit.record(session, user_id=user_id, action="unsnooze", target=customer.kvk)
        return customer

    async def _snooze_incident(
        self, session: AsyncSession, customer: Customer, until: datetime | None, user_id: str
    ) -> None:
        """The customer's open incident follows its snooze; its message shows it."""
        incident = await open_incident(customer.id, session=session)
        alerts = self.services.extras.get("alerts")
        if incident is None or alerts is None:
            return
        incident.snoozed_until, incident.snoozed_by = until, user_id
        await alerts.refresh(session, incident, customer, utcnow())
        note = (
            f":zzz: Snoozed by <@{user_id}> until {date(until)}."
            if until
            else (f":bell: Unsnoozed by <@{user_id}>.")
        )
        await alerts.reply(session, incident, note)
