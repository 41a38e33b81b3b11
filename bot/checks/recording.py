"""Recording one check: result row, hourly rollup, the customer's current state, listeners.

All in one transaction, so alerting and onboarding listeners write incidents, invitation
updates and outbox rows atomically with the result.

State rules (docs/interface.md, Connection states): ``scopes_missing`` and ``revoked`` at
once; ``failing`` only after ``FAILURE_THRESHOLD`` consecutive failed checks (below it the
customer keeps its state); ``unknown`` (Visma/Brincr trouble, the app's own credentials) at
once, but it is not a failure of the customer and does not count; a healthy check resets the
count.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import State
from bot.domain.outcomes import CheckOutcome
from bot.settings import Settings
from storage.customers import change_state
from storage.db import Database
from storage.models import CheckResult, CheckRollup, Customer

_SEVERE = {State.SCOPES_MISSING, State.REVOKED}

CheckListener = Callable[[AsyncSession, Customer, CheckOutcome, str], Awaitable[None]]
"""Called after each recorded check, inside the recording transaction, with the customer as
it is now and its previous state, so alerting and onboarding write their rows atomically with
the result: ``await listener(session, customer, outcome, previous_state)``."""


def _reason(outcome: CheckOutcome) -> str | None:
    if outcome.missing_scopes:
        return "missing scopes: " + " ".join(outcome.missing_scopes)
    if outcome.error_code:
        return f"{outcome.error_code}: {outcome.error_text or ''}".rstrip(": ")
    return None


def _new_state(customer: Customer, outcome: CheckOutcome, threshold: int) -> State:
    state = State(outcome.state)
    if state is State.HEALTHY:
        customer.consecutive_failures = 0
        return state
    if state in _SEVERE or state is State.FAILING:
        customer.consecutive_failures += 1
    if state is State.FAILING and customer.consecutive_failures < threshold:
        return State(customer.state)
    return state


RollupKey = tuple[int, datetime]


def _hour(outcome: CheckOutcome) -> datetime:
    return outcome.checked_at.replace(minute=0, second=0, microsecond=0)


async def _load(
    session: AsyncSession, outcomes: list[CheckOutcome]
) -> tuple[dict[int, Customer], dict[RollupKey, CheckRollup]]:
    """The batch's customers and rollup rows, in one query each."""
    ids = {o.customer_id for o in outcomes}
    hours = {_hour(o) for o in outcomes}
    customers = await session.scalars(select(Customer).where(Customer.id.in_(ids)))
    rollups = await session.scalars(
        select(CheckRollup).where(CheckRollup.customer_id.in_(ids), CheckRollup.hour.in_(hours))
    )
    return {c.id: c for c in customers}, {(r.customer_id, r.hour): r for r in rollups}


def _rollup(
    session: AsyncSession, rollups: dict[RollupKey, CheckRollup], outcome: CheckOutcome
) -> None:
    key = (outcome.customer_id, _hour(outcome))
    latency = (outcome.token_ms or 0) + (outcome.probe_ms or 0)
    row = rollups.get(key)
    if row is None:
        row = CheckRollup(
            customer_id=key[0],
            hour=key[1],
            checks=0,
            failures=0,
            latency_ms_sum=0,
            latency_ms_max=0,
            worst_state=outcome.state,
        )
        session.add(row)
        rollups[key] = row
    row.checks += 1
    row.failures += 0 if outcome.healthy else 1
    row.latency_ms_sum += latency
    row.latency_ms_max = max(row.latency_ms_max, latency)
    if not outcome.healthy:
        row.worst_state = outcome.state


ERROR_CODE_MAX = 100  # check_results.error_code is String(100)


def _result_row(outcome: CheckOutcome) -> CheckResult:
    return CheckResult(
        customer_id=outcome.customer_id, checked_at=outcome.checked_at, state=outcome.state,
        token_outcome=outcome.token_outcome.value,
        required_scopes=" ".join(outcome.required_scopes),
        granted_scopes=" ".join(outcome.granted_scopes),
        missing_scopes=" ".join(outcome.missing_scopes), probe_status=outcome.probe_status,
        token_ms=outcome.token_ms, probe_ms=outcome.probe_ms,
        # the upstream's own error member: cut to its column, never a failed batch on PostgreSQL
        error_code=outcome.error_code[:ERROR_CODE_MAX] if outcome.error_code else None,
        error_text=outcome.error_text,
    )  # fmt: skip


def next_check_delay(outcome: CheckOutcome, failures: int, interval: timedelta) -> timedelta:
    """The interval when healthy; sooner with exponential backoff when in trouble."""
    if outcome.healthy:
        return interval
    delay = min(interval, timedelta(minutes=1) * (2 ** min(failures, 10)))
    if outcome.retry_after:
        delay = max(delay, timedelta(seconds=outcome.retry_after))
    return delay


async def record_outcome(
    db: Database, outcome: CheckOutcome, settings: Settings, listeners: Sequence[CheckListener]
) -> None:
    await record_outcomes(db, [outcome], settings, listeners)


async def record_outcomes(
    db: Database,
    outcomes: list[CheckOutcome],
    settings: Settings,
    listeners: Sequence[CheckListener],
) -> None:
    """Record a batch of checks in one transaction (1,000 checks/s on SQLite needs it).

    Listeners run after the batch is flushed, inside the same transaction, in check order.
    A customer forgotten while it was being checked is skipped.
    """
    async with db.transaction() as session:
        customers, rollups = await _load(session, outcomes)
        applied: list[tuple[Customer, CheckResult, CheckOutcome, str]] = []
        for outcome in outcomes:
            customer = customers.get(outcome.customer_id)
            if customer is None:
                continue
            result = _result_row(outcome)
            session.add(result)
            _rollup(session, rollups, outcome)
            applied.append((customer, result, outcome, customer.state))
            await _apply(session, customer, outcome, settings)
        await session.flush()
        for customer, result, outcome, previous in applied:
            customer.last_result_id = result.id
            for listener in listeners:
                await listener(session, customer, outcome, previous)


async def _apply(
    session: AsyncSession, customer: Customer, outcome: CheckOutcome, settings: Settings
) -> None:
    customer.last_check_at = outcome.checked_at
    customer.required_scopes = " ".join(outcome.required_scopes)
    customer.granted_scopes = " ".join(outcome.granted_scopes)
    customer.missing_scopes = " ".join(outcome.missing_scopes)
    state = _new_state(customer, outcome, settings.failure_threshold)
    await change_state(
        customer, state, session=session, reason=_reason(outcome), at=outcome.checked_at
    )
    delay = next_check_delay(outcome, customer.consecutive_failures, settings.check_interval)
    customer.next_check_at = outcome.checked_at + delay
    customer.claimed_until = customer.claimed_by = None  # the scheduler's lease ends here
