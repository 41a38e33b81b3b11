"""``GET /metrics``: the Prometheus exposition, with the database gauges refreshed first."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from bot.core.clock import utcnow
from bot.core.metrics import (
    CUSTOMERS,
    OPEN_INCIDENTS,
    OUTBOX_BACKLOG,
    OUTBOX_FAILED,
    SLACK_DELIVERY_FAILING,
)
from bot.domain import State
from storage.db import Database
from storage.models import Customer, Incident, Notification
from storage.slack_delivery import delivery_problems
from storage.statuses import IncidentKind, NotificationStatus


async def _counts(db: Database, column: Any, *where: Any) -> dict[str, int]:
    async with db.transaction() as session:
        rows = await session.execute(select(column, func.count()).where(*where).group_by(column))
        return {str(key): int(count) for key, count in rows}


async def refresh_gauges(db: Database) -> None:
    states = await _counts(db, Customer.state)
    incidents = await _counts(db, Incident.kind, Incident.resolved_at.is_(None))
    outbox = await _counts(db, Notification.status)
    for state in State:
        CUSTOMERS.labels(state=state.value).set(states.get(state.value, 0))
    for kind in IncidentKind:
        OPEN_INCIDENTS.labels(kind=kind).set(incidents.get(kind, 0))
    OUTBOX_BACKLOG.set(outbox.get(NotificationStatus.PENDING, 0))
    OUTBOX_FAILED.set(outbox.get(NotificationStatus.FAILED, 0))
    async with db.transaction() as session:
        problems = await delivery_problems(session=session, now=utcnow())
    SLACK_DELIVERY_FAILING.clear()  # a problem that ended leaves no stale series behind
    for p in problems:
        given_up = str(p.given_up).lower()
        SLACK_DELIVERY_FAILING.labels(p.channel_id, p.error, given_up).set(p.undelivered)


async def render(db: Database) -> tuple[bytes, str]:
    """The exposition text and its content type, with database gauges refreshed."""
    await refresh_gauges(db)
    return generate_latest(), CONTENT_TYPE_LATEST
