"""The services a handler, the scheduler or the CLI works with, built once per process.

Handlers receive this container and call one service function; they never talk SQL or HTTP
themselves (STYLE.md). Features plug into each other through three lists instead of imports:

- ``check_listeners``: called after each check is recorded, *inside the same transaction*,
  so alerting and onboarding write incidents, invitation updates and outbox rows atomically
  with the result: ``await listener(session, customer, outcome, previous_state)``.
- ``readiness``: ``await probe() -> (ok, detail)``; ``GET /readyz`` is 200 when all are ok.
- ``components``: long-running parts (scheduler, outbox sender) started and stopped by
  ``serve`` and the demo: objects with ``async start()`` and ``async stop()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from bot.health import CheckOutcome
from bot.settings import Settings
from storage.db import Database
from storage.models import Customer

if TYPE_CHECKING:
    from bot.checks import CheckService

CheckListener = Callable[[AsyncSession, Customer, CheckOutcome, str], Awaitable[None]]
ReadinessProbe = Callable[[], Awaitable[tuple[bool, str]]]


class Component(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Services:
    settings: Settings
    db: Database
    checker: CheckService
    check_listeners: list[CheckListener] = field(default_factory=list)
    readiness: dict[str, ReadinessProbe] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
