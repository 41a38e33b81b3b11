"""Operational tables are kept for documented periods (docs/security.md) and pruned by the
existing retention job in batches: outbox 30 days, webhook events 30 days, audit log and
resolved incidents 365 days, peer looks 7 days; pending notifications, open incidents and
rows still threaded under are never removed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.core.clock import utcnow
from storage import retention
from storage.db import Database
from storage.models import AuditEntry, Incident, Notification, PeerLook, WebhookEvent
from storage.retention import prune_history
from storage.statuses import NotificationStatus


async def _ids(db: Database, model: type, key: str) -> set[object]:
    async with db.transaction() as session:
        return set((await session.scalars(select(getattr(model, key)))).all())


def _note(id_: int, age: timedelta, status: str, target: int | None = None) -> Notification:
    at = utcnow() - age
    return Notification(
        id=id_, created_at=at, kind="post", channel_id="C0ALERTS", payload={"text": "x"},
        status=status, attempts=1, next_attempt_at=at, target_id=target,
    )  # fmt: skip


async def test_old_operational_rows_are_pruned_and_live_ones_kept(db: Database) -> None:
    old, young = timedelta(days=31), timedelta(days=29)
    older = timedelta(days=366)
    now = utcnow()
    async with db.transaction() as session:
        session.add_all([
            _note(1, old, NotificationStatus.SENT),  # pruned
            _note(2, old, NotificationStatus.FAILED),  # pruned
            _note(3, old, NotificationStatus.PENDING),  # never: not delivered yet
            _note(4, young, NotificationStatus.SENT),  # young
            _note(5, old, NotificationStatus.SENT),  # root of an open incident
            _note(6, old, NotificationStatus.SENT),  # target of a pending update
            _note(7, young, NotificationStatus.PENDING, target=6),
        ])  # fmt: skip
        session.add_all([
            Incident(id=1, kind="customer", state="revoked", opened_at=now - older,
                     resolved_at=now - older),  # pruned
            Incident(id=2, kind="customer", state="revoked", opened_at=now - older,
                     resolved_at=now - timedelta(days=30)),  # resolved recently
            Incident(id=3, kind="customer", state="revoked", opened_at=now - older,
                     open_key="c:3", root_notification_id=5),  # open
        ])  # fmt: skip
        session.add_all([
            WebhookEvent(notification_id=f"n-{age.days}", event="e", received_at=now - age,
                         body="{}", body_hash=f"h-{age.days}")
            for age in (old, young)
        ])  # fmt: skip
        session.add_all([
            AuditEntry(at=now - older, user_id="U1", action="check"),
            AuditEntry(at=now - timedelta(days=364), user_id="U1", action="check"),
        ])  # fmt: skip
        session.add_all([
            PeerLook(cause_key="production:token:invalid_scope", looked_at=now - timedelta(days=8)),
            PeerLook(cause_key="sandbox:probe:503", looked_at=now - timedelta(days=6)),
        ])  # fmt: skip

    report = await prune_history(db, now=now)

    assert await _ids(db, Notification, "id") == {3, 4, 5, 6, 7}
    assert await _ids(db, Incident, "id") == {2, 3}
    assert await _ids(db, WebhookEvent, "notification_id") == {"n-29"}
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 1
    assert await _ids(db, PeerLook, "cause_key") == {"sandbox:probe:503"}
    assert (report.outbox, report.incidents, report.webhook_events, report.audit) == (2, 1, 1, 1)
    assert report.peer_looks == 1
    again = await prune_history(db, now=now)
    assert (again.outbox, again.incidents, again.webhook_events, again.audit) == (0, 0, 0, 0)
    assert again.peer_looks == 0


async def test_a_backlog_is_pruned_in_batches(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    async with db.transaction() as session:
        session.add_all(
            [_note(i, timedelta(days=40), NotificationStatus.SENT) for i in range(1, 11)]
        )
    report = await prune_history(db, now=utcnow())
    assert report.outbox == 10
    assert await _ids(db, Notification, "id") == set()
