"""``GET /metrics``: the Prometheus exposition, with the database gauges refreshed first.

A scrape must stay cheap however large the tables grow and however many scrapers there are:

- the gauges are read at most once per ``REFRESH_EVERY`` per process; concurrent scrapes
  share one refresh (a lock), later ones serve the cached values;
- each read is an indexed count, never a full-table aggregate: customers by state
  (``ix_customers_state``), open incidents (``ix_incidents_open``, ``resolved_at IS NULL``),
  and the outbox's *pending* and *failed* rows only (``ix_outbox_due`` starts with
  ``status``), so millions of delivered rows are never scanned.

``serve --role all`` counts in two processes (:class:`bot.runtime.CheckEngine`): its
``/metrics`` adds the engine's exposition to its own (:func:`merge`), one series per name
and labels, as if one process had counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

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

log = logging.getLogger(__name__)
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


async def render(
    db: Database, *, more: str | None = None, database_gauges: bool = True
) -> tuple[bytes, str]:
    """The exposition text and its content type, with database gauges at most a minute old
    (``database_gauges``), and ``more`` (another process's exposition) merged in."""
    if database_gauges:
        await refresh_if_due(db)
    own = generate_latest()
    if more is None:
        return own, CONTENT_TYPE_LATEST
    try:
        return merge(own.decode(), more), CONTENT_TYPE_LATEST
    except ValueError as error:  # not an exposition: this process's own series still count
        log.warning("the check engine's metrics are unreadable (%s): served without them", error)
        return own, CONTENT_TYPE_LATEST


def merge(own: str, more: str) -> bytes:
    """Two processes' expositions as one: counters and histograms add up, a gauge takes the
    higher value (the engine's last sweep; the database's gauges are the listener's alone),
    anything else (build info) is this process's."""
    families = {family.name: family for family in text_string_to_metric_families(own)}
    for family in text_string_to_metric_families(more):
        mine = families.get(family.name)
        if mine is None:
            families[family.name] = family
        elif mine.type == family.type:
            mine.samples = _combined(mine, family)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families.values()))
    return generate_latest(registry)


def _combined(mine: Metric, theirs: Metric) -> list[Any]:
    adds = mine.type in ("counter", "histogram", "summary")
    if not adds and mine.type != "gauge":
        return list(mine.samples)
    values: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    for sample in [*mine.samples, *theirs.samples]:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        if key not in values:
            values[key] = sample
            continue
        first = values[key]
        value = first.value + sample.value if adds else max(first.value, sample.value)
        values[key] = first._replace(value=value)
    return list(values.values())


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
