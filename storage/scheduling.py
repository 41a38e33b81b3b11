"""Claiming due customers for the scheduler, so replicas never check one twice.

PostgreSQL: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``: a replica skips rows
another is claiming right now, and sees them claimed (``claimed_until`` in the future) after
that one commits. SQLite has one writer at a time, so the same statement without the lock
clause is already exclusive (and SQLite runs single-instance).

The fleet-wide budget: every claim first takes the ``claim_budgets`` row (:func:`open_budget`:
an upsert, which locks it on PostgreSQL until the claim commits; SQLite has one writer at a
time), claims at most what is left of the window's budget and adds what it claimed
(:func:`spend_budget`). Replicas therefore claim one after the other and together no more
than one worker would, however many there are. The window is the scheduler's tick window,
from each worker's own clock (``utcnow``, as the claim's ``now``); a window older than the
row's is never written back, so a worker whose clock is a little behind shares the newer
window instead of resetting it. A worker that claimed and died leaves nothing to clean up:
the count belongs to a window that ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, case, func, or_, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows, upsert_into
from storage.models import ClaimBudget, Customer


class Claimed(NamedTuple):
    """A claimed customer and when its check was due."""

    id: int
    due: datetime


async def claim_due(
    *,
    session: AsyncSession,
    now: datetime,
    lease_until: datetime,
    worker: str,
    limit: int,
    due_by: datetime | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` linked customers whose check is due by ``due_by`` (default
    ``now``), most overdue first; rows claimed by another worker until after ``now`` are
    skipped. Returned most overdue first, each with when it was due."""
    due = (
        select(Customer.id)
        .where(
            Customer.tenant_id.is_not(None),
            Customer.next_check_at <= (due_by or now),
            or_(Customer.claimed_until.is_(None), Customer.claimed_until < now),
        )
        .order_by(Customer.next_check_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    result = await session.execute(
        update(Customer)
        .where(Customer.id.in_(due.scalar_subquery()))
        .values(claimed_until=lease_until, claimed_by=worker)
        .returning(Customer.id, Customer.next_check_at)
        .execution_options(synchronize_session=False)
    )
    # next_check_at is set on every row claimed (it was due); `or now` is for the type
    return sorted((Claimed(i, at or now) for i, at in result.all()), key=lambda c: c.due)


CHECKS_BUDGET = "checks"  # the sweep's row of claim_budgets


class Budget(NamedTuple):
    """The fleet's claim budget as a claim found it: the tick window it counts (its start)
    and how many customers every worker together claimed in it so far."""

    window_start: datetime
    claimed: int


async def open_budget(
    *, session: AsyncSession, window_start: datetime, name: str = CHECKS_BUDGET
) -> Budget:
    """Lock the budget ``name`` for this transaction (insert it when missing) and move it to
    the window starting at ``window_start`` when that is newer than its own (count 0 again);
    returns it. Take it before anything else the claim does: on PostgreSQL the workers'
    claims queue here, one at a time, until each commits (milliseconds; for a worker frozen
    inside its claim the others wait at most ``BUDGET_WAIT_MS``:
    :func:`open_budget_unless_held`)."""
    new = upsert_into(cast(Table, ClaimBudget.__table__), session).values(
        name=name, window_start=window_start, claimed=0
    )
    newer = ClaimBudget.window_start < new.excluded.window_start
    statement = new.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "window_start": case((newer, new.excluded.window_start),
                                 else_=ClaimBudget.window_start),
            "claimed": case((newer, 0), else_=ClaimBudget.claimed),
        },
    ).returning(ClaimBudget.window_start, ClaimBudget.claimed)  # fmt: skip
    row = (await session.execute(statement)).one()
    return Budget(row.window_start, row.claimed)


BUDGET_WAIT_MS = 2_000  # how long a claim waits for another worker's hold on the budget


async def open_budget_unless_held(
    *, session: AsyncSession, window_start: datetime, name: str = CHECKS_BUDGET
) -> Budget | None:
    """:func:`open_budget`, or None when another worker has held the budget for longer than
    ``BUDGET_WAIT_MS`` (on PostgreSQL): frozen in the middle of its claim (a paused VM, a
    lost connection the server has not noticed yet), it would otherwise hold every other
    worker's claim until their statement timeout, tick after tick. The caller then claims at
    its own pace, as before the budget, until the hold ends."""
    if session.get_bind().dialect.name != "postgresql":
        return await open_budget(session=session, window_start=window_start, name=name)
    await session.execute(text(f"SET LOCAL lock_timeout = {BUDGET_WAIT_MS}"))
    try:
        async with session.begin_nested():  # a lock timeout undoes this much, not the claim
            budget: Budget | None = await open_budget(
                session=session, window_start=window_start, name=name
            )
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        budget = None
    await session.execute(text("SET LOCAL lock_timeout = DEFAULT"))
    return budget


LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout that ran out


async def spend_budget(claimed: int, *, session: AsyncSession, name: str = CHECKS_BUDGET) -> None:
    """Add ``claimed`` to the budget that :func:`open_budget` locked in this transaction."""
    if claimed:
        await session.execute(
            update(ClaimBudget)
            .where(ClaimBudget.name == name)
            .values(claimed=ClaimBudget.claimed + claimed)
            .execution_options(synchronize_session=False)
        )


async def count_linked(*, session: AsyncSession) -> int:
    total = await session.scalar(
        select(func.count()).select_from(Customer).where(Customer.tenant_id.is_not(None))
    )
    return int(total or 0)


async def release_claims(*, session: AsyncSession, worker: str) -> int:
    """Release every customer ``worker`` still holds (a stopping replica whose sweep was cut):
    another replica checks them at once instead of after the lease."""
    result = await session.execute(
        update(Customer)
        .where(Customer.claimed_by == worker)
        .values(claimed_until=None, claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


async def release(
    ids: Sequence[int], *, session: AsyncSession, worker: str, next_check_at: datetime
) -> int:
    """End ``worker``'s lease on those of ``ids`` it still holds (a check that was not
    recorded: cut short, or its recording failed), due again at ``next_check_at``; returns
    how many were released. Recorded checks already ended their lease."""
    if not ids:
        return 0
    result = await session.execute(
        update(Customer)
        .where(Customer.id.in_(list(ids)), Customer.claimed_by == worker)
        .values(claimed_until=None, claimed_by=None, next_check_at=next_check_at)
        .execution_options(synchronize_session=False)
    )
    return affected_rows(result)


class CheckSnapshot(NamedTuple):
    """What a check needs of a customer."""

    environment: str
    tenant_id: str | None
    missing_scopes: str  # the required scopes missing on record, space-separated
    rollout_missing_scopes: str = ""  # the rollout scopes not switched ON, as last asked
    rollout_asked_at: datetime | None = None  # when a token request last named them


async def check_snapshots(
    customer_ids: Sequence[int], *, session: AsyncSession
) -> dict[int, CheckSnapshot]:
    """What a check needs of each customer, by customer id (customers forgotten meanwhile
    are absent). In chunks of 500."""
    found: dict[int, CheckSnapshot] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = list(customer_ids[start : start + 500])
        rows = await session.execute(
            select(
                Customer.id, Customer.environment, Customer.tenant_id, Customer.missing_scopes,
                Customer.rollout_missing_scopes, Customer.rollout_asked_at,
            ).where(Customer.id.in_(chunk))
        )  # fmt: skip
        found.update({row[0]: CheckSnapshot(*row[1:]) for row in rows})
    return found
