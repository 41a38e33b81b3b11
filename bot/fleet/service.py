"""What support and account managers ask of the fleet: one customer's status, its history,
the list, the App Home, and removing a customer (forget). Handlers call these; they return domain
data, never Block Kit (the renderers in ``bot/fleet/render*.py`` turn it into messages)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.checks.service import CheckService
from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import format_duration, normalize_kvk
from bot.fleet.timeline import PAGE_SIZE, HistoryPage
from bot.services import Services
from bot.slack.text import ago, date, escape
from storage import audit
from storage.customers import claim_manual_check, find_customer, get_by_kvk, remove_customer
from storage.models import Customer
from storage.reads import (
    LIST_FILTERS,
    ROLLOUT_LIST,
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
# ... and within a budget counted from the audit log (docs/security.md): at most
# MANUAL_PER_PERSON checks by one person and MANUAL_OVERALL by everyone in MANUAL_WINDOW.
# Admins are never refused (an incident needs "Check now"), but their checks count.
MANUAL_WINDOW = timedelta(minutes=10)
MANUAL_PER_PERSON = 20
MANUAL_OVERALL = 100
# "Share in channel" posts the status for everyone (and mentions the account manager):
# one share of a customer per channel per SHARE_EVERY, counted from the audit log.
SHARE_EVERY = timedelta(minutes=5)
LIST_USAGE = "`/brincr list [problems|pending|revoked|rollout|all]`"


async def _within_budget(session: AsyncSession, user_id: str, now: datetime) -> None:
    """UserError saying when the next check by hand is possible, when the budget is spent."""
    since = now - MANUAL_WINDOW
    for who, limit in ((user_id, MANUAL_PER_PERSON), (None, MANUAL_OVERALL)):
        times = await audit.times("check", since, session=session, user_id=who, limit=limit)
        if len(times) < limit:
            continue
        free = times[-1] + MANUAL_WINDOW  # when the oldest of the last `limit` leaves
        whose = "You have" if who else "The team has"
        raise UserError(
            f"{whose} started {limit} checks by hand in {format_duration(MANUAL_WINDOW)}: the "
            f"most {'one person' if who else 'everyone together'} may, so the bot stays within "
            f"Brincr's request budget. The next is possible {date(free)} "
            f"(in {format_duration(free - now)}).",
            usage="Scheduled checks go on; `/brincr status` shows the last result. "
            "Bot admins are not limited.",
        )


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

    async def status(self, query: str) -> StatusData:
        """The status, as stored (no check), of the customer ``query`` names (see
        :meth:`resolve`): one transaction, the customer row read once."""
        async with self.db.transaction() as session:
            customer = await find_customer(query, session=session)
            return await read_status(customer, session=session, now=utcnow())

    async def start_manual_check(
        self, customer_id: int, user_id: str, *, admin: bool = False
    ) -> None:
        """Claim a check by hand (``/brincr check``, "Check now") and audit it; UserError
        saying when the last one ran when one ran less than MANUAL_CHECK_EVERY ago, or when
        the next is possible when ``user_id`` (not an ``admin``) spent the budget. The claim
        is one conditional UPDATE, so two replicas or two clicks never both pass; the budget
        is counted and recorded under one lock (:func:`storage.audit.lock_budget`)."""
        now = utcnow()
        async with self.db.transaction() as session:
            await audit.lock_budget(session)
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
            if not admin:
                await _within_budget(session, user_id, now)
            audit.record(session, user_id=user_id, action="check", target=customer.kvk)
        log.info("check of %s by hand by %s", customer.kvk, user_id)

    async def start_share(self, customer_id: int, user_id: str, channel_id: str) -> None:
        """Note a "Share in channel" press and audit it; UserError saying when the next is
        possible when this customer was shared in this channel less than SHARE_EVERY ago
        (counted and recorded under the budget lock: replicas never both pass)."""
        now = utcnow()
        async with self.db.transaction() as session:
            await audit.lock_budget(session)
            customer = await session.get(Customer, customer_id)
            if customer is None:
                raise UserError("That customer was removed a moment ago.")
            shares = await audit.times("share", now - SHARE_EVERY, session=session,
                                       target=customer.kvk, detail=channel_id, limit=1)  # fmt: skip
            if shares:
                free = shares[0] + SHARE_EVERY
                raise UserError(
                    f"*{escape(customer.name)}* was shared in this channel {ago(shares[0], now)}."
                    f" Once every {format_duration(SHARE_EVERY)}: the next is possible "
                    f"{date(free)} (in {format_duration(free - now)}).",
                    usage="Scroll up for the shared status, or use `/brincr status` for yours.",
                )
            audit.record(session, user_id=user_id, action="share", target=customer.kvk,
                         detail=channel_id)  # fmt: skip

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
                rollout=which == ROLLOUT_LIST,
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
