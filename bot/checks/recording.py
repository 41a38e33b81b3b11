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
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import State
from bot.domain.outcomes import CheckOutcome
from bot.domain.retrying import Backoff
from bot.domain.upstream import MAX_ERROR_TEXT, clean_text
from bot.settings import Settings
from storage.customers import by_ids, insert_state_changes, move_state
from storage.db import Database
from storage.models import Customer
from storage.results import ERROR_CODE_LENGTH, RollupDelta, add_to_rollups, insert_results

_SEVERE = {State.SCOPES_MISSING, State.REVOKED}

CheckListener = Callable[[AsyncSession, Customer, CheckOutcome, str], Awaitable[None]]
"""Called after each recorded check, inside the recording transaction, with the customer as
it is now and its previous state, so alerting and onboarding write their rows atomically with
the result: ``await listener(session, customer, outcome, previous_state)``."""


def _reason(outcome: CheckOutcome) -> str | None:
    if outcome.missing_scopes:
        return "missing scopes: " + " ".join(outcome.missing_scopes)
    if outcome.error_code:
        reason = f"{outcome.error_code}: {outcome.error_text or ''}".rstrip(": ")
        return clean_text(reason, ERROR_CODE_LENGTH + MAX_ERROR_TEXT + 2)
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


def _hour(outcome: CheckOutcome) -> datetime:
    return outcome.checked_at.replace(minute=0, second=0, microsecond=0)


def _rollups(outcomes: Sequence[CheckOutcome]) -> list[RollupDelta]:
    deltas: dict[tuple[int, datetime], RollupDelta] = {}
    for outcome in outcomes:
        key = (outcome.customer_id, _hour(outcome))
        delta = deltas.get(key)
        if delta is None:
            delta = deltas[key] = RollupDelta(key[0], key[1], worst_state=outcome.state)
        latency = (outcome.token_ms or 0) + (outcome.probe_ms or 0)
        delta.add(outcome.state, outcome.healthy, latency)
    return list(deltas.values())


def _result_row(outcome: CheckOutcome) -> dict[str, Any]:
    return dict(
        customer_id=outcome.customer_id, checked_at=outcome.checked_at, state=outcome.state,
        token_outcome=outcome.token_outcome.value,
        required_scopes=" ".join(outcome.required_scopes),
        granted_scopes=" ".join(outcome.granted_scopes),
        missing_scopes=" ".join(outcome.missing_scopes), probe_status=outcome.probe_status,
        token_ms=outcome.token_ms, probe_ms=outcome.probe_ms,
        error_code=clean_text(outcome.error_code, ERROR_CODE_LENGTH),
        error_text=clean_text(outcome.error_text, MAX_ERROR_TEXT),
    )  # fmt: skip


TROUBLE_FIRST = timedelta(minutes=1)  # a customer in trouble is checked again this soon


def next_check_delay(outcome: CheckOutcome, failures: int, interval: timedelta) -> timedelta:
    """The interval when healthy; sooner with exponential backoff (1, 2, 4 … minutes after
    0, 1, 2 … earlier failures, with jitter) when in trouble, never sooner than upstream's
    ``Retry-After`` and never later than the interval."""
    if outcome.healthy:
        return interval
    backoff, n = Backoff(first=TROUBLE_FIRST, cap=interval), failures + 1
    # jitter only below the interval: a customer in trouble is never checked more often
    delay = interval if backoff.ceiling(n) >= interval else backoff.delay(n)
    wait = outcome.retry_after
    if wait is not None and wait > 0:  # False for nan; inf and 1e9 end at the interval
        delay = max(delay, timedelta(seconds=min(wait, interval.total_seconds())))
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

    Results and rollups are written as Core statements (rollups as an upsert), customers
    through the ORM (listeners get them). Listeners run after the batch is flushed, inside
    the same transaction, in check order. A customer forgotten while it was being checked
    is skipped.
    """
    async with db.transaction() as session:
        customers = await by_ids([o.customer_id for o in outcomes], session=session)
        kept = [o for o in outcomes if o.customer_id in customers]
        result_ids = await insert_results([_result_row(o) for o in kept], session=session)
        await add_to_rollups(_rollups(kept), session=session)
        applied: list[tuple[Customer, CheckOutcome, str]] = []
        changes: list[dict[str, Any]] = []
        for outcome, result_id in zip(kept, result_ids, strict=True):
            customer = customers[outcome.customer_id]
            applied.append((customer, outcome, customer.state))
            change = _apply(customer, outcome, settings)
            if change is not None:
                changes.append(change)
            customer.last_result_id = result_id
        await insert_state_changes(changes, session=session)
        await session.flush()
        for customer, outcome, previous in applied:
            for listener in listeners:
                await listener(session, customer, outcome, previous)


def _apply(customer: Customer, outcome: CheckOutcome, settings: Settings) -> dict[str, Any] | None:
    """Apply the check to the customer in memory; its state change row, if any."""
    customer.last_check_at = outcome.checked_at
    customer.required_scopes = " ".join(outcome.required_scopes)
    customer.granted_scopes = " ".join(outcome.granted_scopes)
    customer.missing_scopes = " ".join(outcome.missing_scopes)
    state = _new_state(customer, outcome, settings.failure_threshold)
    change = move_state(customer, state, reason=_reason(outcome), at=outcome.checked_at)
    delay = next_check_delay(outcome, customer.consecutive_failures, settings.check_interval)
    customer.next_check_at = outcome.checked_at + delay
    customer.claimed_until = customer.claimed_by = None  # the scheduler's lease ends here
    return change
