"""Query functions for customers. Every function takes ``session`` by keyword; the caller owns
the transaction (``async with db.transaction() as session``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import (
    KVK_USAGE,
    Environment,
    State,
    normalize_kvk,
    normalize_tenant_id,
)
from storage.db import affected_rows
from storage.models import Customer, Incident, Invitation, StateChange
from storage.statuses import InvitationStatus

CUSTOMER_USAGE = "name a customer by KvK number (8 digits), tenant ID, or a unique part of its name"
MAX_NAME_QUERY = 200


class CustomerNotFound(UserError):
    pass


class AmbiguousCustomer(UserError):
    """More than one customer matches a name; ``candidates`` lists them (at most 10)."""

    def __init__(self, query: str, candidates: Sequence[Customer]) -> None:
        super().__init__("more than one customer matches {echo}", echo=query, usage=CUSTOMER_USAGE)
        self.query = query
        # Plain values: the error outlives the session (its rollback expires ORM objects).
        self.candidates = [Candidate(c.kvk, c.name, c.state) for c in candidates]


@dataclass(frozen=True)
class Candidate:
    kvk: str
    name: str
    state: str


async def get_by_kvk(kvk: str, *, session: AsyncSession) -> Customer | None:
    return await session.scalar(select(Customer).where(Customer.kvk == kvk))


async def get_by_tenant(tenant_id: str, *, session: AsyncSession) -> Customer | None:
    return await session.scalar(select(Customer).where(Customer.tenant_id == tenant_id))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def find_customer(text: str, *, session: AsyncSession) -> Customer:
    """Resolve what a person typed: a KvK number, a tenant ID, or a unique piece of a name.

    Raises CustomerNotFound or AmbiguousCustomer (both UserError, safe to show).
    """
    query = text.strip()
    if not query:
        raise UserError("name a customer", usage=CUSTOMER_USAGE)
    if len(query) > MAX_NAME_QUERY:
        raise UserError("that customer name is too long", usage=CUSTOMER_USAGE)
    if (kvk := normalize_kvk(query)) is not None:
        found = await get_by_kvk(kvk, session=session)
    elif (tenant_id := normalize_tenant_id(query)) is not None:
        found = await get_by_tenant(tenant_id, session=session)
    else:
        found = await _find_by_name(query, session=session)
    if found is None:
        usage = KVK_USAGE if query.replace(" ", "").replace(".", "").isdigit() else CUSTOMER_USAGE
        raise CustomerNotFound("no customer matches {echo}", echo=query[:40], usage=usage)
    return found


async def _find_by_name(query: str, *, session: AsyncSession) -> Customer | None:
    exact = (
        await session.scalars(select(Customer).where(func.lower(Customer.name) == query.lower()))
    ).all()
    if len(exact) == 1:
        return exact[0]
    pattern = f"%{_like_escape(query.lower())}%"
    matches = (
        await session.scalars(
            select(Customer)
            .where(func.lower(Customer.name).like(pattern, escape="\\"))
            .order_by(Customer.name)
            .limit(11)
        )
    ).all()
    if len(matches) > 1:
        raise AmbiguousCustomer(query[:40], matches[:10])
    return matches[0] if matches else None


@dataclass(frozen=True)
class NewCustomer:
    kvk: str
    name: str
    environment: Environment
    tenant_id: str | None = None
    account_manager: str | None = None


async def add_customer(new: NewCustomer, *, session: AsyncSession, state: State) -> Customer:
    """Insert a customer in ``state`` and record the first state change."""
    now = utcnow()
    customer = Customer(
        kvk=new.kvk,
        name=new.name,
        environment=new.environment.value,
        tenant_id=new.tenant_id,
        account_manager=new.account_manager,
        created_at=now,
        state=state.value,
        state_since=now,
        required_scopes="",
        granted_scopes="",
        missing_scopes="",
        consecutive_failures=0,
        next_check_at=now if new.tenant_id else None,
    )
    session.add(customer)
    await session.flush()
    session.add(StateChange(customer_id=customer.id, at=now, from_state=None, to_state=state.value))
    return customer


async def change_state(
    customer: Customer,
    state: State,
    *,
    session: AsyncSession,
    reason: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Move ``customer`` to ``state`` (at ``at``, default now) and record why; False when it
    was already there."""
    row = move_state(customer, state, reason=reason, at=at or utcnow())
    if row is not None:
        session.add(StateChange(**row))
    return row is not None


def move_state(
    customer: Customer, state: State, *, reason: str | None, at: datetime
) -> dict[str, Any] | None:
    """Move ``customer`` to ``state`` in memory; the ``state_changes`` row that records it
    (for :func:`insert_state_changes`), or None when it was already there."""
    if customer.state == state.value:
        return None
    row = dict(customer_id=customer.id, at=at, from_state=customer.state, to_state=state.value,
               reason=reason)  # fmt: skip
    customer.state = state.value
    customer.state_since = at
    customer.state_reason = reason
    return row


async def insert_state_changes(rows: Sequence[dict[str, Any]], *, session: AsyncSession) -> None:
    """Insert ``state_changes`` rows in one statement (a Core insert: ORM objects would each
    be inserted alone, SQLite cannot return their ids for a batch in order)."""
    if rows:
        await session.execute(insert(cast(Table, StateChange.__table__)), list(rows))


async def remove_customer(customer: Customer, *, session: AsyncSession) -> None:
    """Delete the customer, its incidents and (by cascade) everything else it owns."""
    await session.execute(delete(Incident).where(Incident.customer_id == customer.id))
    await session.delete(customer)


async def unlinked(
    environment: str | None, *, session: AsyncSession, limit: int
) -> list[tuple[Customer, datetime | None]]:
    """Customers without a tenant (in ``environment`` when given), each with its newest open
    invitation's time: newest invitation first, then those never invited, newest first."""
    newest = (
        select(Invitation.customer_id, func.max(Invitation.created_at).label("invited_at"))
        .where(Invitation.status == InvitationStatus.OPEN)
        .group_by(Invitation.customer_id)
        .subquery()
    )
    query = (
        select(Customer, newest.c.invited_at)
        .outerjoin(newest, newest.c.customer_id == Customer.id)
        .where(Customer.tenant_id.is_(None))
        .order_by(newest.c.invited_at.desc().nulls_last(), Customer.created_at.desc())
        .limit(limit)
    )
    if environment is not None:
        query = query.where(Customer.environment == environment)
    return [(customer, invited_at) for customer, invited_at in await session.execute(query)]


async def invited_without_tenant(
    environment: str | None, *, session: AsyncSession, limit: int
) -> list[str]:
    """KvK numbers of customers with an open invitation and no tenant."""
    query = (
        select(Customer.kvk)
        .join(Invitation, Invitation.customer_id == Customer.id)
        .where(Invitation.status == InvitationStatus.OPEN, Customer.tenant_id.is_(None))
        .distinct()
        .limit(limit)
    )
    if environment is not None:
        query = query.where(Customer.environment == environment)
    return list((await session.scalars(query)).all())


async def by_kvk(kvks: Sequence[str], *, session: AsyncSession) -> list[Customer]:
    """The customers with these KvK numbers (every customer when none is given), by KvK."""
    query = select(Customer).order_by(Customer.kvk)
    if kvks:
        query = query.where(Customer.kvk.in_(list(kvks)))
    return list((await session.scalars(query)).all())


# --- bulk import and export (bot/fleet/customers_csv.py) ------------------------------------------

BULK_CHUNK = 2000  # rows per executemany: far below SQLite's and PostgreSQL's parameter limits
_CUSTOMERS = cast(Table, Customer.__table__)
_STATE_CHANGES = cast(Table, StateChange.__table__)


@dataclass(frozen=True)
class StoredCustomer:
    """The columns an import compares against (a plain row, not an ORM object)."""

    id: int
    kvk: str
    name: str
    environment: str
    tenant_id: str | None
    account_manager: str | None
    state: str


async def stored_for_import(*, session: AsyncSession) -> dict[str, StoredCustomer]:
    """Every customer by KvK, in one SELECT."""
    rows = await session.execute(
        select(
            Customer.id,
            Customer.kvk,
            Customer.name,
            Customer.environment,
            Customer.tenant_id,
            Customer.account_manager,
            Customer.state,
        )
    )
    return {row.kvk: StoredCustomer(**row._asdict()) for row in rows}


async def insert_many(
    news: Sequence[NewCustomer], *, session: AsyncSession, progress: Callable[[int], None]
) -> None:
    """Insert customers (``pending`` with a tenant, else ``invited``) and their first state
    change, with a few multi-row statements per chunk instead of one flush per customer."""
    now = utcnow()
    for start in range(0, len(news), BULK_CHUNK):
        chunk = news[start : start + BULK_CHUNK]
        values = [_insert_values(new, now) for new in chunk]
        # Core statements: executemany without RETURNING (the ORM's bulk path falls back to a
        # statement per row on SQLite when asked for the ids in order).
        await session.execute(insert(_CUSTOMERS), values)
        first_changes = select(
            Customer.id, literal(now, Customer.state_since.type), Customer.state
        ).where(Customer.kvk.in_([new.kvk for new in chunk]))
        await session.execute(
            insert(_STATE_CHANGES).from_select(["customer_id", "at", "to_state"], first_changes)
        )
        progress(len(chunk))


def _insert_values(new: NewCustomer, now: datetime) -> dict[str, Any]:
    state = State.PENDING if new.tenant_id else State.INVITED
    return {
        "kvk": new.kvk,
        "name": new.name,
        "environment": new.environment.value,
        "tenant_id": new.tenant_id,
        "account_manager": new.account_manager,
        "created_at": now,
        "state": state.value,
        "state_since": now,
        "required_scopes": "",
        "granted_scopes": "",
        "missing_scopes": "",
        "consecutive_failures": 0,
        "next_check_at": now if new.tenant_id else None,
    }


async def update_many(
    changes: Sequence[tuple[StoredCustomer, NewCustomer]],
    *,
    session: AsyncSession,
    progress: Callable[[int], None],
) -> None:
    """Apply imported values to existing customers (bulk UPDATE by primary key). A customer
    still ``invited`` that gets a tenant becomes ``pending`` and is due for a check now."""
    now = utcnow()
    for start in range(0, len(changes), BULK_CHUNK):
        chunk = changes[start : start + BULK_CHUNK]
        plain = [_update_values(old, new) for old, new in chunk if not _gets_tenant(old, new)]
        linked = [_update_values(old, new) for old, new in chunk if _gets_tenant(old, new)]
        if plain:
            await session.execute(update(Customer), plain)
        if linked:
            for values in linked:
                values.update(state=State.PENDING.value, state_since=now, next_check_at=now)
            await session.execute(update(Customer), linked)
            await session.execute(
                insert(_STATE_CHANGES),
                [
                    {"customer_id": v["id"], "at": now, "from_state": State.INVITED.value,
                     "to_state": State.PENDING.value, "reason": "tenant set by an import"}
                    for v in linked
                ],
            )  # fmt: skip
        progress(len(chunk))


def _gets_tenant(old: StoredCustomer, new: NewCustomer) -> bool:
    return bool(new.tenant_id) and old.tenant_id != new.tenant_id and old.state == State.INVITED


def _update_values(old: StoredCustomer, new: NewCustomer) -> dict[str, Any]:
    return {
        "id": old.id,
        "name": new.name,
        "environment": new.environment.value,
        "tenant_id": new.tenant_id,
        "account_manager": new.account_manager,
    }


@dataclass(frozen=True)
class ExportRow:
    kvk: str
    name: str
    environment: str
    tenant_id: str | None
    account_manager: str | None
    state: str
    granted_scopes: str
    missing_scopes: str
    state_since: datetime
    last_check_at: datetime | None
    rollout_missing_scopes: str


async def export_rows(*, session: AsyncSession) -> AsyncIterator[list[ExportRow]]:
    """Every customer by KvK, streamed in one SELECT of plain columns, in lists of up to
    ``BULK_CHUNK`` rows (one hand-over from the database thread per list, not per row)."""
    result = await session.stream(
        select(
            Customer.kvk,
            Customer.name,
            Customer.environment,
            Customer.tenant_id,
            Customer.account_manager,
            Customer.state,
            Customer.granted_scopes,
            Customer.missing_scopes,
            Customer.state_since,
            Customer.last_check_at,
            Customer.rollout_missing_scopes,
        ).order_by(Customer.kvk)
    )
    async for rows in result.partitions(BULK_CHUNK):
        yield [ExportRow(*cast(tuple[Any, ...], row)) for row in rows]


async def claim_manual_check(
    customer_id: int, now: datetime, every: timedelta, *, session: AsyncSession
) -> bool:
    """Note a check by hand now; False when one ran less than ``every`` ago (a conditional
    UPDATE: two replicas or two clicks never both pass)."""
    claimed = await session.execute(
        update(Customer)
        .where(
            Customer.id == customer_id,
            or_(
                Customer.last_manual_check_at.is_(None),
                Customer.last_manual_check_at <= now - every,
            ),
        )
        .values(last_manual_check_at=now)
    )
    return affected_rows(claimed) == 1


async def by_ids(ids: Sequence[int], *, session: AsyncSession) -> dict[int, Customer]:
    """The customers with these ids (those forgotten meanwhile are absent)."""
    rows = await session.scalars(select(Customer).where(Customer.id.in_(list(ids))))
    return {c.id: c for c in rows}
