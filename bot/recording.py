"""Recording one check: result row, hourly rollup, the customer's current state, listeners.

All in one transaction, so alerting and onboarding listeners write incidents, invitation
updates and outbox rows atomically with the result.

State rules (CONTRACT.md): ``scopes_missing`` and ``revoked`` at once; ``failing`` only after
``FAILURE_THRESHOLD`` consecutive failed checks (below it the customer keeps its state);
``unknown`` (Visma/Brincr trouble, the app's own credentials) at once, but it is not a failure
of the customer and does not count; a healthy check resets the count.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain import State
from bot.health import CheckOutcome
from bot.services import CheckListener
from bot.settings import Settings
from storage.customers import change_state
from storage.db import Database
from storage.models import CheckResult, CheckRollup, Customer

_SEVERE = {State.SCOPES_MISSING, State.REVOKED}


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


async def _rollup(session: AsyncSession, outcome: CheckOutcome) -> None:
    hour = outcome.checked_at.replace(minute=0, second=0, microsecond=0)
    row = await session.get(CheckRollup, (outcome.customer_id, hour))
    latency = (outcome.token_ms or 0) + (outcome.probe_ms or 0)
    if row is None:
        row = CheckRollup(
            customer_id=outcome.customer_id,
            hour=hour,
            checks=0,
            failures=0,
            latency_ms_sum=0,
            latency_ms_max=0,
            worst_state=outcome.state,
        )
        session.add(row)
    row.checks += 1
    row.failures += 0 if outcome.healthy else 1
    row.latency_ms_sum += latency
    row.latency_ms_max = max(row.latency_ms_max, latency)
    if not outcome.healthy:
        row.worst_state = outcome.state


async def record_outcome(
    db: Database, outcome: CheckOutcome, settings: Settings, listeners: list[CheckListener]
) -> None:
    from bot.checks import next_check_delay

    async with db.transaction() as session:
        customer = await session.get(Customer, outcome.customer_id)
        if customer is None:  # forgotten while it was being checked
            return
        result = CheckResult(
            customer_id=customer.id,
            checked_at=outcome.checked_at,
            state=outcome.state,
            token_outcome=outcome.token_outcome.value,
            required_scopes=" ".join(outcome.required_scopes),
            granted_scopes=" ".join(outcome.granted_scopes),
            missing_scopes=" ".join(outcome.missing_scopes),
            probe_status=outcome.probe_status,
            token_ms=outcome.token_ms,
            probe_ms=outcome.probe_ms,
            error_code=outcome.error_code,
            error_text=outcome.error_text,
        )
        session.add(result)
        await session.flush()
        await _rollup(session, outcome)
        previous = customer.state
        customer.last_result_id = result.id
        customer.last_check_at = outcome.checked_at
        customer.required_scopes = result.required_scopes
        customer.granted_scopes = result.granted_scopes
        customer.missing_scopes = result.missing_scopes
        state = _new_state(customer, outcome, settings.failure_threshold)
        await change_state(customer, state, session=session, reason=_reason(outcome))
        delay = next_check_delay(outcome, customer.consecutive_failures, settings.check_interval)
        customer.next_check_at = outcome.checked_at + delay
        for listener in listeners:
            await listener(session, customer, outcome, previous)
