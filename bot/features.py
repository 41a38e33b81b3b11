"""Features that plug into the running bot beyond the Slack handlers: check listeners,
long-running components, readiness probes and HTTP routes. ``Runtime`` calls
:func:`install_features` once; each feature's ``install(services, sender)`` adds itself to the
lists on :class:`~bot.services.Services`."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk.web.async_client import AsyncWebClient

from bot import alerting, digest, invites, webhook_endpoint
from bot.outbox import OutboxSender
from bot.services import Services

Installer = Callable[[Services, OutboxSender], None]


def install_features(services: Services, client: AsyncWebClient) -> OutboxSender:
    """The outbox sender, then every feature. ``client`` is the interactive client; the
    sender gets its own without retry handlers (it reschedules instead of sleeping)."""
    outbox_client = AsyncWebClient(token=client.token, base_url=client.base_url)
    sender = OutboxSender(services.db, outbox_client, worker_id=services.extras["worker_id"])
    services.components.append(sender)
    services.readiness["outbox"] = sender.readiness
    services.extras["outbox"] = sender
    alerting.install(services, sender)
    for install in _installers():
        install(services, sender)
    digest.install(services)
    return sender


def _installers() -> list[Installer]:
    return [webhook_endpoint.install, invites.install]
