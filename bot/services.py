"""The services a handler, the scheduler or the CLI works with, built once per process.

Handlers receive this container and call one service function; they never talk SQL or HTTP
themselves (STYLE.md). Fields are added as features arrive; construction is in
:func:`bot.app.build_services` (the factory) so tests can build one per test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.settings import Settings
from storage.db import Database

if TYPE_CHECKING:
    from bot.checks import CheckService


@dataclass
class Services:
    settings: Settings
    db: Database
    checker: CheckService
    extras: dict[str, Any] = field(default_factory=dict)
