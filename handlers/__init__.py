"""Slack listeners, one module per feature, each with ``register(app, deps)``."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import admin, alerts, digest, fleet, history, home, invite, link, status
from handlers.deps import Deps

MODULES = (status, fleet, admin, home, alerts, link, invite, history, digest)


def register_handlers(app: AsyncApp, deps: Deps) -> None:
    for module in MODULES:
        module.register(app, deps)
