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

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.core.clock import utcnow
from bot.core.metrics import (
    CUSTOMERS,
    OPEN_INCIDENTS,
    OUTBOX_BACKLOG,
    OUTBOX_FAILED,
    PAGER_BACKLOG,
    PAGER_FAILED,
    SLACK_DELIVERY_FAILING,
)
from bot.domain import Environment, State
from storage.db import Database
from storage.reads import gauge_counts
from storage.slack_delivery import delivery_problems
from storage.statuses import IncidentKind

REFRESH_EVERY = 60.0  # seconds the database gauges are served from the last read


class _Refresh:
    """When the gauges were last read, per database, and the lock that makes one read."""

    def __init__(self) -> None:
        self.at: weakref.WeakKeyDictionary[Database, float] = weakref.WeakKeyDictionary()
        self.locks: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()
        self.reads = 0  # how many times the database was read (tests, benchmarks)


REFRESH = _Refresh()


async def refresh_gauges(db: Database) -> None:
    REFRESH.reads += 1
    async with db.transaction() as session:
        counts = await gauge_counts(session=session)
    by_pair = counts.customers_by_state_and_environment
    for state in State:
        for env in Environment:
            CUSTOMERS.labels(state=state.value, environment=env.value).set(
                by_pair.get((state.value, env.value), 0)
            )
    for kind in IncidentKind:
        OPEN_INCIDENTS.labels(kind=kind).set(counts.open_incidents_by_kind.get(kind, 0))
    OUTBOX_BACKLOG.set(counts.outbox_pending)
    OUTBOX_FAILED.set(counts.outbox_failed)
    PAGER_BACKLOG.set(counts.pager_pending)
    PAGER_FAILED.set(counts.pager_failed)
    async with db.transaction() as session:
        problems = await delivery_problems(session=session, now=utcnow())
    SLACK_DELIVERY_FAILING.clear()  # a problem that ended leaves no stale series behind
    for p in problems:
        given_up = str(p.given_up).lower()
        SLACK_DELIVERY_FAILING.labels(p.channel_id, p.error, given_up).set(p.undelivered)


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
