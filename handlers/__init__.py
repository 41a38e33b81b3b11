"""Slack listeners, one module per feature, each with ``register(app, deps)``."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import admin, alerts, fleet, home, invite, link, maintenance, status
from handlers.deps import Deps

MODULES = (status, fleet, admin, home, alerts, link, invite, maintenance)


def register_handlers(app: AsyncApp, deps: Deps) -> None:
    for module in MODULES:
        module.register(app, deps)
