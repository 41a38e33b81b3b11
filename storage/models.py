"""The database schema (SQLAlchemy 2). Changes only through Alembic (storage/migrations).

Tables, by who writes them:
- ``customers``: one row per Brincr customer, with its current state denormalised so `status`,
  `list` and the App Home read one row; ``next_check_at``/``claimed_until`` drive scheduling.
- ``check_results``: raw checks, kept briefly (pruned); ``check_rollups``: hourly counts and
  latency per customer, kept long; ``state_changes``: every state transition with its reason.
- ``invitations``: hand-offs sent by account managers; the code is kept only to resend it.
- ``incidents``: one open incident per customer (or per upstream outage) with its Slack message.
- ``outbox``: Slack notifications written in the same transaction as the change that caused
  them; a sender claims, posts and records them (exactly once, across crashes and replicas).
- ``webhook_events``: Visma deliveries by notification id (idempotency).
- ``audit_log``: who changed what. ``kv``: small shared facts (heartbeats, leases).
- ``claim_budgets``: how many checks every worker together claimed in the current scheduler
  tick window (``storage.scheduling.open_budget``), so replicas share one pace.
- ``alert_holds``: a broken customer's alert held for ``ALERT_GROUP_WAIT`` while peers are
  checked; ``peer_looks``: when each cause was last looked for (``bot.alerts.holds``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.statuses import InvitationStatus, NotificationStatus, PagerEventStatus
from storage.types import UtcDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger primary keys that still autoincrement on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON}  # noqa: RUF012


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # `list` and the App Home: one state's customers longest in it first, read from the
        # index with a LIMIT instead of sorting the fleet (storage.reads.fleet_page)
        Index("ix_customers_state_since_name", "state", "state_since", "name"),
        # the snoozed count on top of the list: only snoozed customers are in it
        Index(
            "ix_customers_snoozed_until", "snoozed_until",
            postgresql_where=text("snoozed_until IS NOT NULL"),
            sqlite_where=text("snoozed_until IS NOT NULL"),
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kvk: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    environment: Mapped[str] = mapped_column(String(16))  # bot.domain.Environment
    tenant_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    account_manager: Mapped[str | None] = mapped_column(String(100))  # Slack user ID or a name
    created_at: Mapped[datetime]

    # current state (bot.domain.State), denormalised from the last check
    state: Mapped[str] = mapped_column(String(20), index=True)
    state_since: Mapped[datetime]
    state_reason: Mapped[str | None] = mapped_column(Text)
    required_scopes: Mapped[str] = mapped_column(Text, default="")  # checked against, space-sep
    granted_scopes: Mapped[str] = mapped_column(Text, default="")
    missing_scopes: Mapped[str] = mapped_column(Text, default="")
    # scope rollouts (#17): the rollout scopes not switched ON yet, as last asked (space-sep),
    # and when a token request last named them (asked again at most hourly while missing)
    rollout_missing_scopes: Mapped[str] = mapped_column(Text, default="", server_default="")
    rollout_asked_at: Mapped[datetime | None]
    last_check_at: Mapped[datetime | None]
    last_result_id: Mapped[int | None] = mapped_column(BigId)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)

    # scheduling: a replica claims a due customer by moving claimed_until forward
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))

    snoozed_until: Mapped[datetime | None]
    snoozed_by: Mapped[str | None] = mapped_column(String(32))
    # checks started by people are throttled per customer, across replicas
    last_manual_check_at: Mapped[datetime | None]

    results: Mapped[list[CheckResult]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )


class CheckResult(Base):
    __tablename__ = "check_results"
    __table_args__ = (Index("ix_check_results_customer_checked", "customer_id", "checked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    checked_at: Mapped[datetime] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(20))
    token_outcome: Mapped[str] = mapped_column(String(24))  # bot.domain.outcomes.TokenOutcome
    required_scopes: Mapped[str] = mapped_column(Text, default="")
    granted_scopes: Mapped[str] = mapped_column(Text, default="")
    missing_scopes: Mapped[str] = mapped_column(Text, default="")
    probe_status: Mapped[int | None] = mapped_column(Integer)
    token_ms: Mapped[int | None] = mapped_column(Integer)
    probe_ms: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_text: Mapped[str | None] = mapped_column(Text)  # upstream text, verbatim (truncated)

    customer: Mapped[Customer] = relationship(back_populates="results")


class CheckRollup(Base):
    """Hourly summary per customer, kept 30+ days after raw results are pruned."""

    __tablename__ = "check_rollups"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms_sum: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms_max: Mapped[int] = mapped_column(Integer, default=0)
    worst_state: Mapped[str] = mapped_column(String(20))


class StateChange(Base):
    __tablename__ = "state_changes"
    __table_args__ = (Index("ix_state_changes_customer_at", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(200))  # secret-ish: never logged or listed
    language: Mapped[str] = mapped_column(String(2))  # "nl" | "en"
    contact: Mapped[str | None] = mapped_column(String(200))
    invited_by: Mapped[str] = mapped_column(String(32))  # Slack user ID (the account manager)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=InvitationStatus.OPEN)  # statuses
    approved_at: Mapped[datetime | None]
    stale_notified_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))  # where the hand-off was posted
    message_ts: Mapped[str | None] = mapped_column(String(32))
    handoff_notification_id: Mapped[int | None] = mapped_column(BigId)  # outbox row that posted


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_open", "resolved_at", "customer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # IncidentKind
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    upstream_key: Mapped[str | None] = mapped_column(String(64))  # e.g. "visma:production"
    # Set while open, NULL when resolved: a unique index then allows one open incident each.
    open_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    affected_count: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    snoozed_by: Mapped[str | None] = mapped_column(String(32))
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    next_reminder_at: Mapped[datetime | None]
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    root_notification_id: Mapped[int | None] = mapped_column(BigId)  # outbox row of the alert


class Notification(Base):
    """An outbound Slack message: a row first, delivered by the sender (``bot.outbox``).

    ``kind``: "post" (chat.postMessage), "update" (chat.update of ``target_id``'s message),
    "reply" (postMessage in ``target_id``'s thread), "dm" (to ``channel_id`` = a user ID).
    ``target_id`` names another notification whose ``ts`` is needed: it is delivered first.
    ``status``: :class:`~storage.statuses.NotificationStatus` (pending, sent, failed, or
    superseded by a newer update of the same message).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_created_at", "created_at"),  # retention
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(16))
    channel_id: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigId, index=True)
    payload: Mapped[dict[str, Any]]  # {"text": ..., "blocks": [...]} as Slack takes them
    status: Mapped[str] = mapped_column(String(12), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    channel_posted: Mapped[str | None] = mapped_column(String(32))  # the channel Slack answered
    ts: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookEvent(Base):
    """A verified delivery. ``body_hash`` (SHA-256 of the raw body) recognises a replayed
    body under fresh headers; an unprocessed row is claimed (``claimed_until``) by the worker
    processing it, and retried by the ``webhook-retry`` job once the claim has lapsed."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_body_hash", "body_hash", unique=True),
        Index("ix_webhook_events_unprocessed", "processed_at", "claimed_until"),
        Index("ix_webhook_events_received_at", "received_at"),
    )

    notification_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event: Mapped[str] = mapped_column(String(100))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    application_id: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))


class WebhookBodyHash(Base):
    """The SHA-256 of a verified webhook body that carries no timestamp of its own: with fresh
    headers it could be acted on at any time, so its hash outlives the 30-day
    ``webhook_events`` row (never pruned; 32 bytes). docs/security.md, replays."""

    __tablename__ = "webhook_body_hashes"

    body_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    first_seen_at: Mapped[datetime]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    user_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[str | None] = mapped_column(Text)


class KeyValue(Base):
    __tablename__ = "kv"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


# --- on-call (#13): PagerDuty events, maintenance windows, grouped incidents' members -----


class PagerEvent(Base):
    """One PagerDuty Events API v2 event: a row first, written in the transaction that
    changed the incident, sent by ``bot.alerts.pager.PagerDutySender``. One row per
    (``dedup_key``, ``action``): each incident triggers, acknowledges and resolves once."""

    __tablename__ = "pager_events"
    __table_args__ = (
        UniqueConstraint("dedup_key", "action", name="uq_pager_events_dedup_key_action"),
        Index("ix_pager_events_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))  # trigger | acknowledge | resolve
    incident_id: Mapped[int | None] = mapped_column(BigId)
    alert_notification_id: Mapped[int | None] = mapped_column(BigId)  # for the Slack link
    payload: Mapped[dict[str, Any]]  # the event without routing_key (added when sent)
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12), default=PagerEventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class MaintenanceWindow(Base):
    """Planned downtime of one environment: no incidents open while it lasts."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (Index("ix_maintenance_windows_env_ends", "environment", "ends_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    environment: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    ended_by: Mapped[str | None] = mapped_column(String(32))  # ended early by hand
    end_announced_at: Mapped[datetime | None]


class IncidentMember(Base):
    """A customer counted in a grouped incident (``Incident.kind == "group"``)."""

    __tablename__ = "incident_members"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    joined_at: Mapped[datetime]


# --- alert holds (#23): a new cause's first alert waits while the bot looks for peers ------


class AlertHold(Base):
    """A broken customer's alert, held until ``due_at`` (``ALERT_GROUP_WAIT``) while the bot
    checks whether other customers share its cause (``bot.alerts.holds``). One per customer;
    the release job takes each due row once, in the transaction that alerts (or not)."""

    __tablename__ = "alert_holds"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    cause_key: Mapped[str] = mapped_column(String(80))  # bot.alerts.grouping.Cause.key
    held_at: Mapped[datetime]
    due_at: Mapped[datetime] = mapped_column(index=True)


class PeerLook(Base):
    """When the bot last looked for peers of one cause (its key names the environment): at
    most one look per cause and environment per ``CHECK_INTERVAL``, whichever replica."""

    __tablename__ = "peer_looks"

    cause_key: Mapped[str] = mapped_column(String(80), primary_key=True)
    looked_at: Mapped[datetime]


# --- the fleet-wide claim budget: every worker's sweeps share one pace ---------------------


class ClaimBudget(Base):
    """How many customers the workers together claimed in the current tick window, which
    starts at ``window_start`` (``storage.scheduling.open_budget``). One row per budget
    (``name``: ``"checks"``), locked by each claim, reset when a newer window begins."""

    __tablename__ = "claim_budgets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    window_start: Mapped[datetime]
    claimed: Mapped[int] = mapped_column(Integer, default=0)
