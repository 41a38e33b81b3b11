"""Query functions for incidents (keyword-only ``session``; the caller owns the transaction).

One open incident per customer, upstream or group is enforced by the unique ``open_key``;
every state change that two replicas could both make (acknowledge, close, a reminder, the end
of a snooze) is a conditional UPDATE whose row count says who won.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import State
from storage.db import affected_rows
from storage.models import CheckResult, Customer, Incident, IncidentMember


async def open_by_key(key: str, *, session: AsyncSession) -> Incident | None:
    return await session.scalar(select(Incident).where(Incident.open_key == key))


OPEN_INVOLVEMENT = "incidents.open_keys_and_members"  # its storage.db.once_per_transaction key


async def open_keys_and_members(*, session: AsyncSession) -> tuple[frozenset[str], frozenset[int]]:
    """Every open incident's ``open_key`` and every customer counted in an open group: who
    may have something to resolve when it turns healthy (one query each, for a batch)."""
    keys = await session.scalars(select(Incident.open_key).where(Incident.open_key.is_not(None)))
    members = await session.scalars(
        select(IncidentMember.customer_id)
        .join(Incident, IncidentMember.incident_id == Incident.id)
        .where(Incident.resolved_at.is_(None))
    )
    return frozenset(k for k in keys if k is not None), frozenset(members)


async def any_open(keys: Sequence[str], *, session: AsyncSession) -> bool:
    found = await session.scalar(select(Incident.id).where(Incident.open_key.in_(list(keys))))
    return found is not None


async def open_of_customer(customer_id: int, *, session: AsyncSession) -> int | None:
    """The id of the customer's own open incident, if any."""
    return await session.scalar(
        select(Incident.id).where(
            Incident.customer_id == customer_id, Incident.resolved_at.is_(None)
        )
    )


async def claim_acknowledge(
    incident_id: int, user_id: str, now: datetime, *, session: AsyncSession
) -> bool:
    """Acknowledge the incident; False when it was acknowledged or closed already."""
    done = await session.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.resolved_at.is_(None))
        .where(Incident.acknowledged_by.is_(None))
        .values(acknowledged_by=user_id, acknowledged_at=now)
    )
    return affected_rows(done) == 1


async def close_if_open(incident_id: int, now: datetime, *, session: AsyncSession) -> bool:
    """Close the incident once (two replicas may both see it recover)."""
    done = await session.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.resolved_at.is_(None))
        .values(resolved_at=now, open_key=None)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(done) == 1


async def due_reminders(
    now: datetime, max_reminders: int, *, session: AsyncSession, limit: int = 200
) -> list[Incident]:
    """Open, unacknowledged, unsnoozed incidents whose next reminder is due."""
    rows = await session.scalars(
        select(Incident)
        .where(Incident.resolved_at.is_(None), Incident.acknowledged_by.is_(None))
        .where(Incident.next_reminder_at <= now, Incident.reminders_sent < max_reminders)
        .where(or_(Incident.snoozed_until.is_(None), Incident.snoozed_until <= now))
        .limit(limit)
    )
    return list(rows)


async def claim_reminder(
    incident: Incident, every: timedelta, now: datetime, *, session: AsyncSession
) -> bool:
    """Count one more reminder of ``incident``; False when another replica sent it."""
    done = await session.execute(
        update(Incident)
        .where(Incident.id == incident.id, Incident.reminders_sent == incident.reminders_sent)
        .values(reminders_sent=incident.reminders_sent + 1, next_reminder_at=now + every)
        .execution_options(synchronize_session=False)
    )
    if affected_rows(done) != 1:
        return False
    incident.reminders_sent += 1
    return True


async def snooze_ended_incidents(now: datetime, *, session: AsyncSession) -> list[Incident]:
    rows = await session.scalars(
        select(Incident).where(Incident.resolved_at.is_(None), Incident.snoozed_until <= now)
    )
    return list(rows)


async def snooze_ended_customers(now: datetime, *, session: AsyncSession) -> list[Customer]:
    return list(await session.scalars(select(Customer).where(Customer.snoozed_until <= now)))


async def claim_snooze_end(
    model: type[Incident] | type[Customer], row_id: int, until: Any, *, session: AsyncSession
) -> bool:
    """Clear the snooze that ends at ``until``; False when another replica did."""
    done = await session.execute(
        update(model)
        .where(model.id == row_id, model.snoozed_until == until)
        .values(snoozed_until=None)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(done) == 1


async def linked_count(environment: str, *, session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Customer)
        .where(Customer.environment == environment, Customer.tenant_id.is_not(None))
    )
    return int(count or 0)


async def unknown_by_outcome(
    environment: str, outcomes: Sequence[str], *, session: AsyncSession
) -> tuple[int, tuple[str | None, str | None] | None]:
    """How many customers of the environment are ``unknown`` with their last token outcome
    in ``outcomes``, and one of their errors (code, text)."""
    where = and_(
        Customer.environment == environment,
        Customer.state == State.UNKNOWN.value,
        CheckResult.token_outcome.in_(list(outcomes)),
    )
    joined = (
        select(func.count())
        .select_from(Customer)
        .join(CheckResult, CheckResult.id == Customer.last_result_id)
    )
    count = int(await session.scalar(joined.where(where)) or 0)
    if not count:
        return 0, None
    sample = await session.execute(
        select(CheckResult.error_code, CheckResult.error_text)
        .join(Customer, CheckResult.id == Customer.last_result_id)
        .where(where)
        .limit(1)
    )
    code, text = sample.one()
    return count, (code, text)
