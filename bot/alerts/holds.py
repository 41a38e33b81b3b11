"""A short hold before a new cause alerts, and a look for peers (Alertmanager's ``group_wait``).

A group (``bot.alerts.grouping``) opens when enough customers with one cause are broken and
not yet alerted. When checks are spread over the interval (a fleet onboarded one customer at
a time) each customer would meet a broken cause first and alone, and page alone. So:

- **The hold.** A broken customer whose cause no open incident or group covers does not alert
  at once: its alert is an :class:`~storage.models.AlertHold` row, due ``ALERT_GROUP_WAIT``
  (default 60 s, ``0`` turns holds off) after its check. Customers of an environment with
  fewer linked customers than the group threshold alert at once (no group could form).
- **The look.** At the start of a hold the bot makes up to ``LOOK_SIZE`` (10) other customers
  of the environment that were healthy at their last check due now, soonest due first: the
  sweep checks them at its next tick through the ordinary path (same recording, same request
  metrics). At most one look per cause and environment per ``CHECK_INTERVAL``
  (:class:`~storage.models.PeerLook`), so a flapping customer never costs 10 checks a time.
  Peers that break the same way are counted with the held customer; reaching the threshold
  opens one group with all of them and ends their holds.
- **The release.** A job every sweep tick takes each due hold in its own transaction and ends
  it: ``group`` (a group covers the customer now), ``healed`` (no longer broken), ``muted``
  (snoozed, a maintenance window, an upstream incident), ``single`` (it alerts alone now).
  A lone broken customer therefore alerts at most ``ALERT_GROUP_WAIT`` plus one sweep tick
  after its check.

Holds are rows, so a replica killed during a hold loses nothing: whichever replica runs the
release job next finishes it, and only one does (``storage.holds``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import grouping
from bot.checks.scheduler import tick_seconds
from bot.core import metrics
from bot.core.clock import utcnow
from bot.domain import State
from bot.services import Services
from bot.settings import Settings
from storage import holds
from storage.incidents import linked_count
from storage.models import Customer

log = logging.getLogger(__name__)
RELEASES_PER_TICK = 200  # more wait for the next tick (each is one short transaction)
BROKEN = {State.SCOPES_MISSING, State.REVOKED, State.FAILING}


class Opener(Protocol):
    """What a released hold needs of the incident service (:class:`bot.alerts.service.Alerts`):
    the ordinary path to an alert, without holding it again; returns how it ended."""

    services: Services
    settings: Settings

    async def open_now(self, session: AsyncSession, customer: Customer, now: datetime) -> str: ...


class AlertHolds:
    def __init__(self, alerts: Opener) -> None:
        self.alerts = alerts
        self.settings = alerts.settings

    async def hold(self, session: AsyncSession, customer: Customer, now: datetime) -> bool:
        """True when the customer's alert waits (held now, or held already); False: alert now."""
        wait = self.settings.alert_group_wait
        if wait.total_seconds() <= 0:
            return False
        if await holds.hold_of(customer.id, session=session) is not None:
            return True  # checked again during its hold: the release job decides
        if await linked_count(customer.environment, session=session) < grouping.group_threshold():
            return False  # too few customers to ever form a group: no reason to wait
        cause = grouping.Cause.of(customer)
        if not await holds.add_hold(customer.id, cause.key, now, now + wait, session=session):
            return True
        log.info("alert for %s held for %s: looking for others with the same cause",
                 customer.kvk, wait)  # fmt: skip
        await self._look(session, customer, cause, now)
        return True

    async def _look(
        self, session: AsyncSession, customer: Customer, cause: grouping.Cause, now: datetime
    ) -> None:
        every = self.settings.check_interval
        if not await holds.claim_look(cause.key, now, every, session=session):
            return  # looked for this cause within the interval already
        # A healthy check within the last sweep tick (the same batch) already answers.
        fresh = timedelta(seconds=tick_seconds(every))
        brought = await holds.bring_forward(customer.environment, customer.id, now,
                                             checked_before=now - fresh,
                                             session=session)  # fmt: skip
        metrics.ALERT_LOOK_CHECKS.inc(brought)
        log.info("looking for others with %s: %d %s checks brought forward",
                 cause.plain, brought, customer.environment)  # fmt: skip

    async def release_due(self) -> dict[str, int]:
        """The release job: end every due hold (each once, whichever replica); how many
        ended each way."""
        ended: dict[str, int] = {}
        db = self.alerts.services.db
        for _ in range(RELEASES_PER_TICK):
            now = utcnow()
            async with db.transaction() as session:
                customer_id = await holds.take_due(now, session=session)
                if customer_id is None:
                    break
                outcome = await self._release(session, customer_id, now)
            metrics.ALERT_HOLDS.labels(outcome=outcome).inc()
            ended[outcome] = ended.get(outcome, 0) + 1
        if ended:
            self.alerts.services.wake_outbox()
            log.info("alert holds ended: %s", ", ".join(f"{k} {v}" for k, v in ended.items()))
        return ended

    async def _release(self, session: AsyncSession, customer_id: int, now: datetime) -> str:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            return "gone"
        if customer.state not in BROKEN:
            return "healed"
        return await self.alerts.open_now(session, customer, now)


async def drop_for_group(customer_ids: list[int], *, session: AsyncSession) -> None:
    """A group now covers these customers: their holds end (outcome ``group``)."""
    ended = await holds.drop_holds(customer_ids, session=session)
    if ended:
        metrics.ALERT_HOLDS.labels(outcome="group").inc(ended)
