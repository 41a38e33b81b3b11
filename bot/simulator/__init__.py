"""A local stand-in for Visma Connect and the Brincr API, both environments, over real HTTP.

Used by the tests, ``brincr-bot simulate``, the offline demo and the benchmark::

    async with Simulator() as sim:
        sim.approve(tenant_id, "sandbox", ["brincr:category"])
        env = sim.settings_env()  # PRODUCTION_CLIENT_ID, …, SANDBOX_API_URL

The rules it follows are docs/domain.md; where Visma's behaviour is only inferred, options
(:meth:`Simulator.set_options`) switch between the plausible variants.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bot.simulator.server import Simulator
from bot.simulator.state import (
    DEFAULT_SCOPES,
    ENVIRONMENTS,
    FAULT_MODES,
    Counters,
    SimulatorError,
    UnknownTenantError,
)
from bot.simulator.webhooks import TENANT_ADDED, TENANT_DELETED, sign_webhook

__all__ = [
    "DEFAULT_SCOPES",
    "ENVIRONMENTS",
    "FAULT_MODES",
    "TENANT_ADDED",
    "TENANT_DELETED",
    "Counters",
    "Simulator",
    "SimulatorError",
    "UnknownTenantError",
    "serve_forever",
    "sign_webhook",
]

logger = logging.getLogger(__name__)


async def serve_forever(
    host: str,
    port: int,
    latency: float = 0.0,
    *,
    on_start: Callable[[Simulator], None] | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> None:
    """Run a simulator until cancelled; ``on_start`` gets it once it listens (to print its
    :meth:`~Simulator.settings_env`)."""
    sim = Simulator(latency=latency, webhook_url=webhook_url, webhook_secret=webhook_secret)
    await sim.start(host, port)
    try:
        if on_start is not None:
            on_start(sim)
        await asyncio.Event().wait()
    finally:
        await sim.stop()
