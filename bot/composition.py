"""The composition root: :func:`build_bot` puts the whole bot together as one typed object.

``serve``, ``brincr-bot check``, the demo, the benchmarks and the tests all build the bot
here, so a check is the same check whoever runs it: recorded, with the alerting and
onboarding listeners in its transaction. Nothing is wired later at runtime: every service
gets what it needs at construction, and :class:`Bot` names each part with its type.

Building is cheap and does no I/O: no database query, no Slack or Visma request. The
long-running parts (outbox sender, scheduler, webhook deliveries in progress) start only when
:class:`bot.runtime.Runtime` starts them; a command that only checks never starts them, and
the outbox rows its checks write wait for a serving replica's sender.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import maintenance
from bot.alerts.maintenance import Maintenance
from bot.alerts.pager import PagerDutySender
from bot.alerts.service import Alerts
from bot.alerts.upkeep import AlertUpkeep
from bot.checks.scheduler import Job, Scheduler, tick_seconds
from bot.checks.service import CheckService
from bot.clients.pagerduty import EventsClient
from bot.clients.slack import web_client
from bot.core.clock import utcnow
from bot.core.logs import quiet_payload_logs
from bot.domain.roles import Role
from bot.fleet import digest
from bot.fleet.service import Fleet
from bot.onboarding import invitations
from bot.onboarding import rollout as rollouts
from bot.onboarding.linking import Linking
from bot.onboarding.rollout import Rollout
from bot.onboarding.tenant_events import RETRY_EVERY, TenantEvents
from bot.outbox import OutboxSender
from bot.services import Services
from bot.settings import Settings
from storage.db import Database


def worker_name() -> str:
    """Who claims rows in the database: host and process, unique among replicas."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


@dataclass(frozen=True)
class Bot:
    """Every part of one bot process, each built once."""

    settings: Settings
    db: Database
    services: Services
    slack: AsyncWebClient  # interactive calls: retries 429, 5xx and connection errors
    outbox: OutboxSender  # delivers outbound rows with its own client (reschedules on 429)
    pager: PagerDutySender | None  # delivers PagerDuty events when PAGERDUTY_ROUTING_KEY is set
    checker: CheckService
    alerts: Alerts
    upkeep: AlertUpkeep  # reminders, ended snoozes, upstream incidents (a scheduled job)
    maintenance: Maintenance  # planned-downtime windows
    fleet: Fleet
    rollout: Rollout  # scope rollouts: tracked, never alerted
    linking: Linking
    tenant_events: TenantEvents  # Visma webhook deliveries, processed in the background
    scheduler: Scheduler
    worker_id: str
    role: Role = Role.ALL  # what this process is for (serve --role)

    async def aclose(self) -> None:
        """Release the upstream connection pool and the database (after stopping)."""
        await self.checker.aclose()
        if self.pager is not None:
            await self.pager.client.aclose()
        await self.db.close()


def upkeep_every(interval: timedelta) -> timedelta:
    """How often reminders, ended snoozes and upstream incidents are looked at."""
    return timedelta(seconds=max(0.2, min(15.0, interval.total_seconds() / 5)))


def build_bot(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    worker_id: str | None = None,
    role: Role = Role.ALL,
    wake: Callable[[], None] | None = None,
) -> Bot:
    """The whole bot for ``settings``, for ``role`` (a web replica leaves webhook
    deliveries to the workers). ``transport`` replaces the network for the Visma and
    Brincr requests (benchmarks); Slack is reached at ``SLACK_API_URL`` and PagerDuty at
    ``PAGERDUTY_EVENTS_URL`` (tests point them at local stand-ins). ``wake``: whom a written
    row to send wakes, when the senders are not this bot's own (``serve --role all``'s check
    engine, :class:`bot.runtime.CheckEngine`)."""
    worker = worker_id or worker_name()
    db = Database(settings.database_url)
    outbox = OutboxSender(db, web_client(settings, retries=False), worker_id=worker)
    pager = _pager(settings, db, worker)

    def wake_senders() -> None:
        outbox.wake()
        if pager is not None:
            pager.wake()

    services = Services(settings=settings, db=db, wake_outbox=wake or wake_senders)
    alerts = Alerts(services)
    rollout = Rollout(services)
    checker = CheckService(
        settings,
        db,
        listeners=(rollout.on_check, alerts.on_check, invitations.tracker(services)),
        transport=transport,
    )
    linking = Linking(services, checker)
    upkeep = AlertUpkeep(alerts)
    windows = Maintenance(services)

    async def stale_invitations() -> int:
        return await invitations.nudge_stale_invitations(services, utcnow())

    async def alert_upkeep() -> None:
        await upkeep.run(utcnow())

    async def alert_holds() -> dict[str, int]:
        return await alerts.holds.release_due()

    async def maintenance_ends() -> int:
        return await windows.announce_ends(utcnow())

    async def weekly_digest() -> bool:
        return await digest.digest_tick(services)

    async def rollout_tracker() -> int:
        return await rollout.tracker_tick(utcnow())

    tenant_events = TenantEvents(services, linking, worker_id=worker, process=role.works)

    async def webhook_retry() -> int:
        return await tenant_events.retry_due()

    jobs = (
        Job("upkeep", alert_upkeep, upkeep_every(settings.check_interval)),
        # Each sweep tick: a lone customer alerts ALERT_GROUP_WAIT + one tick after its check.
        Job("alert-holds", alert_holds, timedelta(seconds=tick_seconds(settings.check_interval))),
        Job("stale-invitations", stale_invitations, invitations.STALE_EVERY),
        Job("maintenance-ends", maintenance_ends, maintenance.TICK),
        Job("digest", weekly_digest, digest.TICK_EVERY),
        Job("webhook-retry", webhook_retry, RETRY_EVERY),
        Job("rollout-tracker", rollout_tracker, rollouts.TICK),
    )
    quiet_payload_logs()  # payloads that carry invitation codes stay out of debug logs
    return Bot(
        settings=settings,
        db=db,
        services=services,
        slack=web_client(settings),
        outbox=outbox,
        pager=pager,
        checker=checker,
        alerts=alerts,
        upkeep=upkeep,
        maintenance=windows,
        fleet=Fleet(services, checker, before_forget=(alerts.forgetting,)),
        rollout=rollout,
        linking=linking,
        tenant_events=tenant_events,
        scheduler=Scheduler(services, checker, worker_id=worker, jobs=jobs),
        worker_id=worker,
        role=role,
    )


def _pager(settings: Settings, db: Database, worker: str) -> PagerDutySender | None:
    """The PagerDuty sender, when a routing key is set (else incidents page nobody)."""
    key = settings.pagerduty_routing_key
    if key is None or not key.get_secret_value():
        return None
    client = EventsClient(settings.pagerduty_events_url, key)
    return PagerDutySender(db, client, worker_id=worker)
