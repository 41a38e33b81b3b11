"""Read-side queries for what people look at: one customer's status, the fleet list, the
App Home. Every function takes ``session`` by keyword; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import STATE_SEVERITY, State
from storage.facts import counts_by_state, facts_for, rollout_pending
from storage.models import (
    AlertHold,
    CheckResult,
    CheckRollup,
    Customer,
    Incident,
    Invitation,
    MaintenanceWindow,
    Notification,
    PagerEvent,
)
from storage.slack_delivery import DeliveryProblem, delivery_problems
from storage.statuses import InvitationStatus, NotificationStatus

HISTORY_STRIP = 20  # recent checks shown as a strip in `status`
WEEK = timedelta(days=7)
_RANK = {state.value: rank for state, rank in STATE_SEVERITY.items()}
_SEVERITY = case(_RANK, value=Customer.state, else_=9)


@dataclass(frozen=True)
class Uptime:
    checks: int
    failures: int


@dataclass(frozen=True)
class StatusData:
    customer: Customer
    last: CheckResult | None
    recent: list[CheckResult]  # newest first
    week: Uptime
    incident: Incident | None
    invitation: Invitation | None
    maintenance_until: datetime | None = None  # a maintenance window of its environment (#13)
    delivery: list[DeliveryProblem] = field(default_factory=list)  # Slack refusing messages
    held_until: datetime | None = None  # its alert waits for peers (bot.alerts.holds, #23)


async def status_data(customer: Customer, *, session: AsyncSession, now: datetime) -> StatusData:
    recent = list(
        await session.scalars(
            select(CheckResult)
            .where(CheckResult.customer_id == customer.id)
            .order_by(CheckResult.checked_at.desc(), CheckResult.id.desc())
            .limit(HISTORY_STRIP)
        )
    )
    week = await session.execute(
        select(func.coalesce(func.sum(CheckRollup.checks), 0),
               func.coalesce(func.sum(CheckRollup.failures), 0))
        .where(CheckRollup.customer_id == customer.id, CheckRollup.hour >= now - WEEK)
    )  # fmt: skip
    checks, failures = week.one()
    facts = await facts_for(customer, session=session)
    return StatusData(
        customer=customer,
        last=facts.last,
        recent=recent,
        week=Uptime(int(checks), int(failures)),
        incident=facts.incident,
        invitation=await open_invitation(customer.id, session=session),
        maintenance_until=await maintenance_end(customer.environment, session=session, now=now),
        delivery=await delivery_problems(session=session, now=now),
        held_until=await held_until(customer.id, session=session),
    )


async def held_until(customer_id: int, *, session: AsyncSession) -> datetime | None:
    """When the customer's held alert is due, while one is held."""
    return await session.scalar(
        select(AlertHold.due_at).where(AlertHold.customer_id == customer_id)
    )


async def maintenance_end(
    environment: str, *, session: AsyncSession, now: datetime
) -> datetime | None:
    """When the environment's current maintenance window ends (None: no window)."""
    return await session.scalar(
        select(func.max(MaintenanceWindow.ends_at)).where(
            MaintenanceWindow.environment == environment,
            MaintenanceWindow.starts_at <= now,
            MaintenanceWindow.ends_at > now,
            MaintenanceWindow.end_announced_at.is_(None),
        )
    )


HANDED_OFF = "reads.customers_with_handed_off_invitations"  # its once_per_transaction key


async def customers_with_handed_off_invitations(*, session: AsyncSession) -> frozenset[int]:
    """Customers with an open invitation whose hand-off was posted: the ones whose approval
    the invitation tracker reports (one query for a recorded batch)."""
    found = await session.scalars(
        select(Invitation.customer_id).where(
            Invitation.status == InvitationStatus.OPEN,
            Invitation.handoff_notification_id.is_not(None),
        )
    )
    return frozenset(found)


async def open_invitation(customer_id: int, *, session: AsyncSession) -> Invitation | None:
    return await session.scalar(
        select(Invitation)
        .where(Invitation.customer_id == customer_id, Invitation.status == InvitationStatus.OPEN)
        .order_by(Invitation.created_at.desc())
        .limit(1)
    )


LIST_FILTERS: dict[str, tuple[State, ...] | None] = {
    "all": None,
    # `failing` is the older name of `problems`: every customer that is not healthy for a
    # reason that needs someone (the title says so, not the state word `failing`)
    "problems": (State.REVOKED, State.SCOPES_MISSING, State.FAILING, State.UNKNOWN),
    "failing": (State.REVOKED, State.SCOPES_MISSING, State.FAILING, State.UNKNOWN),
    "pending": (State.INVITED, State.PENDING),
    "revoked": (State.REVOKED,),
    "rollout": None,  # not a state: the customers that have not switched rollout scopes ON
}
ROLLOUT_LIST = "rollout"


@dataclass(frozen=True)
class FleetPage:
    counts: dict[str, int]
    customers: list[Customer]
    total: int  # customers matching the filter
    offset: int
    snoozed: int


async def fleet_page(
    states: Sequence[State] | None,
    *,
    session: AsyncSession,
    now: datetime,
    offset: int,
    limit: int,
    rollout: bool = False,
) -> FleetPage:
    """Customers worst first (then longest in that state), with counts per state on top;
    with ``rollout`` only those known not to have switched the rollout scopes ON."""
    counts = await counts_by_state(session=session)
    where: list[ColumnElement[bool]] = (
        [Customer.state.in_([s.value for s in states])] if states else []
    )
    if rollout:
        where.append(Customer.rollout_missing_scopes != "")
        total = await session.scalar(select(func.count()).select_from(Customer).where(*where))
        rows = await session.scalars(
            select(Customer)
            .where(*where)
            .order_by(_SEVERITY, Customer.state_since, Customer.name)
            .offset(offset)
            .limit(limit)
        )
        customers = list(rows)
    else:
        wanted = {s.value for s in states} if states else set(counts)
        total = sum(n for state, n in counts.items() if state in wanted)
        customers = await _worst_first(counts, wanted, session=session, offset=offset, limit=limit)
    snoozed = await session.scalar(
        select(func.count()).select_from(Customer).where(Customer.snoozed_until > now)
    )
    return FleetPage(counts, customers, int(total or 0), offset, int(snoozed or 0))


async def _worst_first(
    counts: dict[str, int], wanted: set[str], *, session: AsyncSession, offset: int, limit: int
) -> list[Customer]:
    """The page ``offset``…``offset + limit`` of the ``wanted`` states' customers in
    ``_SEVERITY`` order, then longest in that state: one state at a time, worst first, each
    read in order from ``ix_customers_state_since_name`` (no sort of the whole fleet); the
    counts say which states the page starts and ends in."""
    ranked = sorted((s for s in wanted if counts.get(s)), key=lambda s: _RANK.get(s, 9))
    groups = [[s] for s in ranked if s in _RANK]
    if unranked := [s for s in ranked if s not in _RANK]:  # one rank, as _SEVERITY's else_
        groups.append(unranked)
    found: list[Customer] = []
    skip = offset
    for group in groups:
        size = sum(counts[s] for s in group)
        if skip >= size:
            skip -= size
            continue
        rows = await session.scalars(
            select(Customer)
            .where(Customer.state == group[0] if len(group) == 1 else Customer.state.in_(group))
            .order_by(Customer.state_since, Customer.name)
            .offset(skip)
            .limit(limit - len(found))
        )
        found.extend(rows)
        skip = 0
        if len(found) >= limit:
            break
    return found


@dataclass(frozen=True)
class HomeData:
    counts: dict[str, int]
    broken: list[Customer]  # revoked / scopes missing / failing, worst first
    incidents: list[tuple[Incident, Customer | None]]
    invitations: list[tuple[Invitation, Customer]]  # waiting longest first
    delivery: list[DeliveryProblem] = field(default_factory=list)  # Slack refusing messages
    rollout_pending: list[Customer] = field(default_factory=list)  # scopes not switched ON


async def home_data(*, session: AsyncSession, now: datetime, limit: int = 15) -> HomeData:
    page = await fleet_page(
        (State.REVOKED, State.SCOPES_MISSING, State.FAILING),
        session=session,
        now=now,
        offset=0,
        limit=limit,
    )
    incidents = await session.execute(
        select(Incident, Customer)
        .outerjoin(Customer, Customer.id == Incident.customer_id)
        .where(Incident.resolved_at.is_(None))
        .order_by(Incident.opened_at)
        .limit(limit)
    )
    invitations = await session.execute(
        select(Invitation, Customer)
        .join(Customer, Customer.id == Invitation.customer_id)
        .where(Invitation.status == InvitationStatus.OPEN)
        .order_by(Invitation.created_at)
        .limit(limit)
    )
    return HomeData(
        counts=page.counts,
        broken=page.customers,
        incidents=[(i, c) for i, c in incidents],
        invitations=[(i, c) for i, c in invitations],
        delivery=await delivery_problems(session=session, now=now),
        rollout_pending=await rollout_pending(session=session),
    )


@dataclass(frozen=True)
class GaugeCounts:
    """What ``/metrics`` reports of the database, each an indexed count."""

    customers_by_state: dict[str, int]
    open_incidents_by_kind: dict[str, int]
    outbox_pending: int
    outbox_failed: int
    # (state, environment) -> customers: the customers table is the fleet, thousands of rows
    # at most, so this grouping may read it whole
    customers_by_state_and_environment: dict[tuple[str, str], int] = field(default_factory=dict)
    pager_pending: int = 0  # PagerDuty events not yet sent (ix_pager_events_due)
    pager_failed: int = 0  # PagerDuty events given up on


async def gauge_counts(*, session: AsyncSession) -> GaugeCounts:
    """Customers by state and environment (the fleet: thousands of rows at most), open
    incidents by kind (``ix_incidents_open``), and the outbox's and the PagerDuty events'
    pending and failed rows only (``ix_outbox_due`` and ``ix_pager_events_due`` start with
    ``status``): never a scan of the delivered rows."""
    states = await session.execute(
        select(Customer.state, Customer.environment, func.count()).group_by(
            Customer.state, Customer.environment
        )
    )
    by_pair = {(str(state), str(env)): int(n) for state, env, n in states}
    by_state: dict[str, int] = {}
    for (state, _env), n in by_pair.items():
        by_state[state] = by_state.get(state, 0) + n
    kinds = await session.execute(
        select(Incident.kind, func.count())
        .where(Incident.resolved_at.is_(None))
        .group_by(Incident.kind)
    )
    outbox = select(func.count()).select_from(Notification)
    pending = await session.scalar(outbox.where(Notification.status == NotificationStatus.PENDING))
    failed = await session.scalar(outbox.where(Notification.status == NotificationStatus.FAILED))
    pager = select(func.count()).select_from(PagerEvent)
    pager_pending = await session.scalar(pager.where(PagerEvent.status == "pending"))
    pager_failed = await session.scalar(pager.where(PagerEvent.status == "failed"))
    return GaugeCounts(
        customers_by_state=by_state,
        open_incidents_by_kind={str(k): int(n) for k, n in kinds},
        outbox_pending=int(pending or 0),
        outbox_failed=int(failed or 0),
        customers_by_state_and_environment=by_pair,
        pager_pending=int(pager_pending or 0),
        pager_failed=int(pager_failed or 0),
    )
