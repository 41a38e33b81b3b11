"""History retention, sized for ~1M checks a day (10,000 customers every 15 minutes).

- Raw ``check_results``: a healthy check is kept ``HEALTHY_RAW_KEEP`` (its rollup holds all it
  says), any other ``RAW_KEEP`` (debugging material: error codes and texts). Enough for
  `status`'s recent-history strip at the default interval. A customer's latest result is
  never pruned: `status` always shows the last check.
- ``check_rollups``: written hourly with each check (``bot.checks.recording``), so pruning raw rows
  loses no counts. Hours older than ``HOURLY_KEEP`` are folded into one row per customer and
  day, stored at 00:00 of that day (sums of checks, failures and latency, the maximum latency,
  the most severe state). Only whole days older than ``HOURLY_KEEP`` are folded, so the
  hourly rows of the last 7 days (what `status` sums) stay exact. The ``kv`` row
  ``COMPACTED_KEY`` says up to where days are folded, so each run only looks at new days.
- Rollups and ``state_changes`` are deleted after ``LONG_KEEP``.
- Operational tables (docs/security.md, "What is kept for how long"): delivered or failed
  ``outbox`` rows after ``OUTBOX_KEEP`` (pending ones never; rows an open incident or an
  invitation still threads under are kept), ``webhook_events`` after ``WEBHOOK_KEEP`` (their
  body hashes recognise replays that long; stale timestamps are refused after 24 h anyway),
  ``audit_log`` entries after ``AUDIT_KEEP`` and resolved ``incidents`` after
  ``INCIDENT_KEEP``. All in batches of ``BATCH``, one short transaction each.

bench/db_size.py measures what this leaves on disk (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.domain import STATE_SEVERITY, State
from storage.db import Database, affected_rows
from storage.models import (
    AuditEntry,
    CheckResult,
    CheckRollup,
    Customer,
    Incident,
    Invitation,
    KeyValue,
    Notification,
    PeerLook,
    StateChange,
    WebhookEvent,
)
from storage.statuses import NotificationStatus

log = logging.getLogger(__name__)
RAW_KEEP = timedelta(days=2)
HEALTHY_RAW_KEEP = timedelta(days=1)
HOURLY_KEEP = timedelta(days=7)
LONG_KEEP = timedelta(days=35)
OUTBOX_KEEP = timedelta(days=30)
WEBHOOK_KEEP = timedelta(days=30)
AUDIT_KEEP = timedelta(days=365)
INCIDENT_KEEP = timedelta(days=365)
# A peer look limits the looks for one cause to one per CHECK_INTERVAL: older rows say nothing.
PEER_LOOK_KEEP = timedelta(days=7)
BATCH = 5000
COMPACTED_KEY = "history.daily_rollups_before"
DAY = timedelta(days=1)
_RANKS = {rank: state.value for state, rank in STATE_SEVERITY.items()}
_SEVERITY = case(
    {s.value: r for s, r in STATE_SEVERITY.items()},
    value=CheckRollup.worst_state,
    else_=STATE_SEVERITY[State.UNKNOWN],
)


@dataclass(frozen=True)
class PruneReport:
    results: int  # raw results deleted
    rollups: int  # rollup rows deleted after LONG_KEEP
    state_changes: int
    compacted: int = 0  # hourly rollup rows folded into daily ones (rows written not counted)
    outbox: int = 0  # delivered or failed notifications
    webhook_events: int = 0
    audit: int = 0
    incidents: int = 0  # resolved ones
    peer_looks: int = 0  # looks for a cause's peers (bot.alerts.holds) older than a week


async def _delete_results(db: Database, now: datetime) -> int:
    """In batches, so a large backlog never holds one long transaction."""
    total = 0
    latest = select(Customer.last_result_id).where(Customer.last_result_id.is_not(None))
    old = or_(
        CheckResult.checked_at < now - RAW_KEEP,
        and_(
            CheckResult.checked_at < now - HEALTHY_RAW_KEEP,
            CheckResult.state == State.HEALTHY.value,
        ),
    )
    while True:
        async with db.transaction() as session:
            ids = (
                await session.scalars(
                    select(CheckResult.id).where(old, CheckResult.id.not_in(latest)).limit(BATCH)
                )
            ).all()
            if ids:
                await session.execute(delete(CheckResult).where(CheckResult.id.in_(ids)))
        total += len(ids)
        if len(ids) < BATCH:
            return total


async def _delete_batched(db: Database, model: Any, key: Any, *where: Any) -> int:
    """Delete the rows matching ``where`` in batches of BATCH (selected by ``key``, a primary
    key column), so a large backlog never holds one long transaction or lock."""
    total = 0
    while True:
        async with db.transaction() as session:
            ids = (await session.scalars(select(key).where(*where).limit(BATCH))).all()
            if ids:
                await session.execute(delete(model).where(key.in_(ids)))
        total += len(ids)
        if len(ids) < BATCH:
            return total


async def prune_operational(db: Database, now: datetime) -> dict[str, int]:
    """Outbox, webhook events, audit log, resolved incidents and peer looks past their keep
    periods."""
    threads = (
        select(Incident.root_notification_id)
        .where(Incident.resolved_at.is_(None), Incident.root_notification_id.is_not(None))
        .union(
            select(Invitation.handoff_notification_id).where(
                Invitation.handoff_notification_id.is_not(None)
            ),
            select(Notification.target_id).where(
                Notification.target_id.is_not(None),
                Notification.status == NotificationStatus.PENDING,
            ),
        )
    )
    return {
        "outbox": await _delete_batched(
            db, Notification, Notification.id,
            Notification.created_at < now - OUTBOX_KEEP,
            Notification.status != NotificationStatus.PENDING,
            Notification.id.not_in(threads),
        ),
        "webhook_events": await _delete_batched(
            db, WebhookEvent, WebhookEvent.notification_id,
            WebhookEvent.received_at < now - WEBHOOK_KEEP,
        ),
        "audit": await _delete_batched(
            db, AuditEntry, AuditEntry.id, AuditEntry.at < now - AUDIT_KEEP
        ),
        "incidents": await _delete_batched(
            db, Incident, Incident.id,
            Incident.resolved_at.is_not(None), Incident.resolved_at < now - INCIDENT_KEEP,
        ),
        "peer_looks": await _delete_batched(
            db, PeerLook, PeerLook.cause_key, PeerLook.looked_at < now - PEER_LOOK_KEEP
        ),
    }  # fmt: skip


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


async def _folded_before(session: AsyncSession, *, lock: bool = False) -> datetime | None:
    query = select(KeyValue).where(KeyValue.key == COMPACTED_KEY)
    row = await session.scalar(query.with_for_update() if lock else query)
    return datetime.fromisoformat(row.value) if row is not None and row.value else None


async def _set_folded_before(session: AsyncSession, day: datetime) -> None:
    row = await session.get(KeyValue, COMPACTED_KEY)
    if row is None:
        row = KeyValue(key=COMPACTED_KEY)
        session.add(row)
    row.value, row.updated_at = day.isoformat(), utcnow()


async def _first_day(db: Database, cutoff: datetime) -> datetime:
    """Where folding starts: the marker, else the oldest rollup's day (one scan, first run)."""
    async with db.transaction() as session:
        marker = await _folded_before(session)
        if marker is not None:
            return marker
        oldest = await session.scalar(select(func.min(CheckRollup.hour)))
        first = cutoff if oldest is None else min(cutoff, _midnight(oldest))
        await _set_folded_before(session, first)  # the row _fold_day locks; no scan next time
        return first


async def _fold_day(db: Database, day: datetime) -> int:
    """Replace one day's hourly rollups by one row per customer at 00:00 of that day.

    Returns the rows deleted. The marker row is locked, so two replicas never fold the same
    day at once; a day already folded (marker past it) is left alone.
    """
    end = day + DAY
    async with db.transaction() as session:
        marker = await _folded_before(session, lock=True)
        if marker is not None and marker > day:
            return 0
        in_day = and_(CheckRollup.hour >= day, CheckRollup.hour < end)
        totals = await session.execute(
            select(CheckRollup.customer_id, func.sum(CheckRollup.checks),
                   func.sum(CheckRollup.failures), func.sum(CheckRollup.latency_ms_sum),
                   func.max(CheckRollup.latency_ms_max), func.min(_SEVERITY))
            .where(in_day).group_by(CheckRollup.customer_id)
        )  # fmt: skip
        rows = [_daily_row(day, *row) for row in totals]
        deleted = await session.execute(delete(CheckRollup).where(in_day))
        if rows:
            await session.execute(insert(CheckRollup), rows)
        await _set_folded_before(session, end)
    return affected_rows(deleted)


def _daily_row(
    day: datetime, customer_id: int, checks: int, failures: int, latency: int, peak: int, rank: int
) -> dict[str, Any]:
    return {
        "customer_id": customer_id, "hour": day, "checks": int(checks),
        "failures": int(failures), "latency_ms_sum": int(latency), "latency_ms_max": int(peak),
        "worst_state": _RANKS.get(int(rank), State.UNKNOWN.value),
    }  # fmt: skip


async def compact_rollups(db: Database, *, now: datetime | None = None) -> int:
    """Fold every whole day older than ``HOURLY_KEEP`` not folded yet, one transaction per
    day; returns the hourly rows folded (deleted)."""
    cutoff = _midnight((now or utcnow()) - HOURLY_KEEP)
    day = await _first_day(db, cutoff)
    folded = 0
    while day < cutoff:
        folded += await _fold_day(db, day)
        day += DAY
    return folded


async def prune_history(db: Database, *, now: datetime | None = None) -> PruneReport:
    now = now or utcnow()
    results = await _delete_results(db, now)
    async with db.transaction() as session:
        rollups = await session.execute(
            delete(CheckRollup).where(CheckRollup.hour < now - LONG_KEEP)
        )
        changes = await session.execute(delete(StateChange).where(StateChange.at < now - LONG_KEEP))
    compacted = await compact_rollups(db, now=now)
    operational = await prune_operational(db, now)
    report = PruneReport(
        results,
        affected_rows(rollups),
        affected_rows(changes),
        compacted,
        **operational,
    )
    log.info("pruned history: %s", report)
    return report
