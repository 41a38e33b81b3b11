"""``GET /metrics``: the Prometheus exposition, with the database gauges refreshed first.

A scrape must stay cheap however large the tables grow and however many scrapers there are:

- the gauges are read at most once per ``REFRESH_EVERY`` per process; concurrent scrapes
  share one refresh (a lock), later ones serve the cached values;
- each read is an indexed count, never a full-table aggregate: customers by state
  (``ix_customers_state``), open incidents (``ix_incidents_open``, ``resolved_at IS NULL``),
  and the outbox's *pending* and *failed* rows only (``ix_outbox_due`` starts with
  ``status``), so millions of delivered rows are never scanned.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.core.metrics import CUSTOMERS, OPEN_INCIDENTS, OUTBOX_BACKLOG, OUTBOX_FAILED
from bot.domain import State
from storage.db import Database
from storage.models import Customer, Incident, Notification
from storage.statuses import IncidentKind, NotificationStatus

REFRESH_EVERY = 60.0  # seconds the database gauges are served from the last read


class _Refresh:
    """When the gauges were last read, per database, and the lock that makes one read."""

    def __init__(self) -> None:
        self.at: weakref.WeakKeyDictionary[Database, float] = weakref.WeakKeyDictionary()
        self.locks: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()
        self.reads = 0  # how many times the database was read (tests, benchmarks)


REFRESH = _Refresh()


async def _counts(db: Database, column: Any, *where: Any) -> dict[str, int]:
    async with db.transaction() as session:
        rows = await session.execute(select(column, func.count()).where(*where).group_by(column))
        return {str(key): int(count) for key, count in rows}


async def _outbox_count(db: Database, status: str) -> int:
    async with db.transaction() as session:
        query = select(func.count()).select_from(Notification)
        return int(await session.scalar(query.where(Notification.status == status)) or 0)


async def refresh_gauges(db: Database) -> None:
    REFRESH.reads += 1
    states = await _counts(db, Customer.state)
    incidents = await _counts(db, Incident.kind, Incident.resolved_at.is_(None))
    for state in State:
        CUSTOMERS.labels(state=state.value).set(states.get(state.value, 0))
    for kind in IncidentKind:
        OPEN_INCIDENTS.labels(kind=kind).set(incidents.get(kind, 0))
    OUTBOX_BACKLOG.set(await _outbox_count(db, NotificationStatus.PENDING))
    OUTBOX_FAILED.set(await _outbox_count(db, NotificationStatus.FAILED))


async def refresh_if_due(db: Database, *, now: float | None = None) -> bool:
    """Read the gauges when the last read is older than REFRESH_EVERY; True if it read."""
    lock = REFRESH.locks.setdefault(db, asyncio.Lock())
    async with lock:
        moment = time.monotonic() if now is None else now
        last = REFRESH.at.get(db)
        if last is not None and moment - last < REFRESH_EVERY:
            return False
        await refresh_gauges(db)
        REFRESH.at[db] = moment
        return True


async def render(db: Database) -> tuple[bytes, str]:
    """The exposition text and its content type, with database gauges at most a minute old."""
    await refresh_if_due(db)
    return generate_latest(), CONTENT_TYPE_LATEST
