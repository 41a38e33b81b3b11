"""What every handler module gets from ``register(app, deps)``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.fleet import Fleet
from bot.permissions import Permissions
from bot.services import Services
from handlers.router import CommandRouter


@dataclass
class Deps:
    services: Services
    fleet: Fleet
    permissions: Permissions
    commands: CommandRouter
