"""History retention, sized for ~1M checks a day (10,000 customers every 15 minutes).

Raw ``check_results`` are kept ``RAW_KEEP`` (enough for `status`'s recent-history strip and
for debugging); hourly ``check_rollups`` and ``state_changes`` are kept ``LONG_KEEP``. Rollups
are written with each check (bot/recording.py), so pruning raw rows loses no counts. A
customer's latest result is never pruned: `status` always shows the last check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from bot.clock import utcnow
from storage.db import Database
from storage.models import CheckResult, CheckRollup, Customer, StateChange

log = logging.getLogger(__name__)
RAW_KEEP = timedelta(days=2)
LONG_KEEP = timedelta(days=35)
BATCH = 5000


@dataclass(frozen=True)
class PruneReport:
    results: int
    rollups: int
    state_changes: int


async def _delete_results(db: Database, before: datetime) -> int:
    """In batches, so a large backlog never holds one long transaction."""
    total = 0
    latest = select(Customer.last_result_id).where(Customer.last_result_id.is_not(None))
    while True:
        async with db.transaction() as session:
            ids = (
                await session.scalars(
                    select(CheckResult.id)
                    .where(CheckResult.checked_at < before, CheckResult.id.not_in(latest))
                    .limit(BATCH)
                )
            ).all()
            if ids:
                await session.execute(delete(CheckResult).where(CheckResult.id.in_(ids)))
        total += len(ids)
        if len(ids) < BATCH:
            return total


async def prune_history(db: Database, *, now: datetime | None = None) -> PruneReport:
    now = now or utcnow()
    results = await _delete_results(db, now - RAW_KEEP)
    async with db.transaction() as session:
        rollups = await session.execute(
            delete(CheckRollup).where(CheckRollup.hour < now - LONG_KEEP)
        )
        changes = await session.execute(delete(StateChange).where(StateChange.at < now - LONG_KEEP))
    report = PruneReport(results, rollups.rowcount or 0, changes.rowcount or 0)  # type: ignore[attr-defined]
    log.info("pruned history: %s", report)
    return report
