"""Installs on-call alerting into a running bot: the incident listener on every recorded
check, and the scheduler (sweeps, upkeep, retention) with its readiness probe."""

from __future__ import annotations

from bot import maintenance
from bot.alert_upkeep import AlertUpkeep
from bot.incidents import Alerts
from bot.outbox import OutboxSender
from bot.pagerduty import PagerDutySender
from bot.pagerduty_client import EventsClient
from bot.scheduler import Scheduler
from bot.services import Services


def install(services: Services, _sender: OutboxSender) -> None:
    alerts = Alerts(services)
    services.check_listeners.append(alerts.on_check)
    scheduler = Scheduler(services, AlertUpkeep(alerts))
    services.extras["alerts"] = alerts
    services.extras["scheduler"] = scheduler
    services.readiness["scheduler"] = scheduler.readiness
    maintenance.install(services)
    key = services.settings.pagerduty_routing_key
    if key is not None and key.get_secret_value():
        client = EventsClient(services.settings.pagerduty_events_url, key)
        sender = PagerDutySender(services.db, client, worker_id=services.extras["worker_id"])
        alerts.pager_sender = sender
        services.components.append(sender)
