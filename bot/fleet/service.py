"""What support and account managers ask of the fleet: one customer's status, its history,
the list, the App Home, and removing a customer (forget). Handlers call these; they return domain
data, never Block Kit (the renderers in ``bot/fleet/render*.py`` turn it into messages)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.checks.service import CheckService
from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import normalize_kvk
from bot.fleet.timeline import PAGE_SIZE, HistoryPage
from bot.services import Services
from bot.slack.text import ago, escape
from storage import audit
from storage.customers import claim_manual_check, find_customer, get_by_kvk, remove_customer
from storage.models import Customer
from storage.reads import (
    LIST_FILTERS,
    FleetPage,
    HomeData,
    StatusData,
    fleet_page,
    home_data,
)
from storage.reads import status_data as read_status
from storage.timeline import customer_timeline

log = logging.getLogger(__name__)
ForgetListener = Callable[[AsyncSession, Customer], Awaitable[None]]
"""Called in the forgetting transaction before the customer is removed."""
# A check started by a person costs a token request against a budget Brincr validates:
# once per customer per MANUAL_CHECK_EVERY, across replicas (customers.last_manual_check_at).
MANUAL_CHECK_EVERY = timedelta(minutes=1)
LIST_USAGE = "`/brincr list [failing|pending|revoked|all]`"


class Fleet:
    def __init__(
        self,
        services: Services,
        checker: CheckService,
        *,
        before_forget: Sequence[ForgetListener] = (),
    ) -> None:
        self.services = services
        self.db = services.db
        self.checker = checker
        self.before_forget = tuple(before_forget)

    async def resolve(self, query: str) -> Customer:
        """The one customer ``query`` names: a KvK number, a tenant ID or a unique part of its
        name (CustomerNotFound / AmbiguousCustomer, both UserErrors, otherwise)."""
        async with self.db.transaction() as session:
            return await find_customer(query, session=session)

    async def status(self, customer_id: int) -> StatusData:
        """The customer's status as stored (no check)."""
        async with self.db.transaction() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise UserError("That customer was removed a moment ago.")
            return await read_status(customer, session=session, now=utcnow())

    async def start_manual_check(self, customer_id: int, user_id: str) -> None:
        """Claim a check by hand (``/brincr check``, "Check now") and audit it; UserError
        saying when the last one ran when one ran less than MANUAL_CHECK_EVERY ago. The claim
        is one conditional UPDATE, so two replicas or two clicks never both pass."""
        now = utcnow()
        async with self.db.transaction() as session:
            claimed = await claim_manual_check(
                customer_id, now, MANUAL_CHECK_EVERY, session=session
            )
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise UserError("That customer was removed a moment ago.")
            if not claimed:
                last = customer.last_manual_check_at or now
                wait = max(1, int((last + MANUAL_CHECK_EVERY - now).total_seconds()) + 1)
                checked = customer.last_check_at
                raise UserError(
                    f"*{escape(customer.name)}* was checked by hand {ago(last, now)}"
                    + (f"; its last check ran {ago(checked, now)}" if checked else "")
                    + f". One check by hand a minute: try again in {wait} s.",
                    usage="`/brincr status` shows the result of the last check",
                )
            audit.record(session, user_id=user_id, action="check", target=customer.kvk)
        log.info("check of %s by hand by %s", customer.kvk, user_id)

    async def check(self, customer_id: int) -> StatusData:
        """Check the customer now, record it like a scheduled check, return its status."""
        await self.checker.check_customer(customer_id)
        async with self.db.transaction() as session:
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise UserError("That customer was removed while it was being checked.")
            return await read_status(customer, session=session, now=utcnow())

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

    async def history(self, query: str, offset: int = 0) -> HistoryPage:
        """The page at ``offset`` of the timeline of the customer ``query`` names (a KvK, a
        tenant ID or a unique part of a name; UserError when none or several match)."""
        async with self.db.transaction() as session:
            customer = await find_customer(query, session=session)
            entries = await customer_timeline(customer, session=session)
        start = min(max(0, offset), max(0, len(entries) - 1))
        return HistoryPage(customer, entries[start : start + PAGE_SIZE], start, len(entries))

    async def home(self) -> HomeData:
        async with self.db.transaction() as session:
            return await home_data(session=session, now=utcnow())

    async def forget(self, kvk: str, user_id: str) -> Customer | None:
        """Remove the customer with KvK ``kvk`` (the confirmation button's value) and all its
        history; None when it was already gone."""
        number = normalize_kvk(kvk)
        async with self.db.transaction() as session:
            customer = await get_by_kvk(number, session=session) if number else None
            if customer is None:
                return None
            for listener in self.before_forget:  # e.g. alerting: resolve its page, leave a group
                await listener(session, customer)
            await remove_customer(customer, session=session)
            audit.record(
                session,
                user_id=user_id,
                action="forget",
                target=customer.kvk,
                detail=f"removed {customer.name} ({customer.environment})",
            )
        log.info("customer %s forgotten by %s", customer.kvk, user_id)
        return customer
