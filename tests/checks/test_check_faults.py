"""Odd but real upstream answers, served by the stand-in over real HTTP, recorded in a real
database (SQLite and PostgreSQL): each becomes that customer's outcome with its reason, and
never stops the other customers' checks from being recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.checks.service import CheckService
from bot.domain import Environment, State
from bot.domain.outcomes import CheckOutcome, TokenOutcome
from bot.settings import Settings, load_settings
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import CheckResult, CheckRollup, Customer

REQUIRED = ["brincr:category", "brincr:country"]
HEALTHY = "11111111-1111-4111-8111-111111111111"
ODD = "22222222-2222-4222-8222-222222222222"
CODE_150 = "e" * 150


def _settings(sim: Simulator, **extra: object) -> Settings:
    values: dict[str, object] = {k.lower(): v for k, v in sim.settings_env().items()}
    values.update(brincr_scopes=" ".join(REQUIRED), check_timeout="1s", check_interval="15m")
    values.update(extra)
    return load_settings(**values)


@pytest.fixture
async def service(sim: Simulator, db: Database) -> AsyncIterator[CheckService]:
    checker = CheckService(_settings(sim), db)
    yield checker
    await checker.aclose()


async def _customer(db: Database, kvk: str, tenant: str) -> int:
    async with db.transaction() as session:
        customer = await add_customer(
            NewCustomer(kvk, f"Klant {kvk}", Environment.PRODUCTION, tenant),
            session=session,
            state=State.PENDING,
        )
        return customer.id


async def _two_customers(sim: Simulator, db: Database) -> tuple[int, int]:
    sim.approve(HEALTHY, "production", REQUIRED)
    sim.approve(ODD, "production", REQUIRED)
    return await _customer(db, "12345678", HEALTHY), await _customer(db, "23456789", ODD)


def _token_answer(sim: Simulator, status: int, body: object, **headers: str) -> None:
    sim.fault(
        "production", "token", "answer", tenant_id=ODD, status=status, body=body,
        headers=headers or None,
    )  # fmt: skip


async def _results(db: Database) -> dict[int, CheckResult]:
    async with db.transaction() as session:
        rows = await session.scalars(select(CheckResult))
        return {r.customer_id: r for r in rows}


async def _customer_row(db: Database, customer_id: int) -> Customer:
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        return customer


@pytest.mark.parametrize(
    "retry_after", ["inf", "1e9", "nan", "-5", "Wed, 21 Oct 2099 07:28:00 GMT"]
)
async def test_an_odd_retry_after_is_recorded_and_never_waits_past_the_interval(
    sim: Simulator, service: CheckService, db: Database, retry_after: str
) -> None:
    healthy, odd = await _two_customers(sim, db)
    _token_answer(sim, 429, {"error": "too_many_requests"}, **{"Retry-After": retry_after})
    outcomes = await service.check_many([healthy, odd])
    assert {o.customer_id: o.state for o in outcomes} == {
        healthy: State.HEALTHY,
        odd: State.UNKNOWN,
    }
    assert set(await _results(db)) == {healthy, odd}
    customer = await _customer_row(db, odd)
    assert customer.next_check_at is not None and customer.last_check_at is not None
    assert customer.next_check_at - customer.last_check_at <= timedelta(minutes=15)
    assert customer.state == State.UNKNOWN and "too_many_requests" in (customer.state_reason or "")


@pytest.mark.parametrize("expires_in", ["soon", "3600.5", None, -1, 1e308])
async def test_an_odd_expires_in_with_a_non_jwt_token_is_a_clear_outcome(
    sim: Simulator, service: CheckService, db: Database, expires_in: object
) -> None:
    healthy, odd = await _two_customers(sim, db)
    body = {"access_token": "not-a-jwt", "token_type": "Bearer", "expires_in": expires_in}
    _token_answer(sim, 200, body)
    outcomes = {o.customer_id: o for o in await service.check_many([healthy, odd])}
    assert outcomes[healthy].state == State.HEALTHY
    # Brincr refuses a token it cannot read: 401, what a tenant that removed us looks like
    assert outcomes[odd].state == State.REVOKED and outcomes[odd].error_code == "unauthorized"
    assert set(await _results(db)) == {healthy, odd}


async def test_a_150_character_error_code_is_kept_to_what_the_schema_holds(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    healthy, odd = await _two_customers(sim, db)
    _token_answer(sim, 400, {"error": CODE_150, "error_description": "bad\x00 tenant " * 100})
    outcomes = {o.customer_id: o for o in await service.check_many([healthy, odd])}
    assert outcomes[odd].state == State.FAILING
    assert outcomes[odd].token_outcome == TokenOutcome.OTHER
    result = (await _results(db))[odd]
    assert result.error_code == CODE_150[:100]
    assert result.error_text is not None and "\x00" not in result.error_text
    assert len(result.error_text) <= 500
    assert (await _results(db))[healthy].state == State.HEALTHY


async def test_a_64_mb_error_page_is_cut_and_the_check_goes_on(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    healthy, odd = await _two_customers(sim, db)
    sim.fault("production", "token", "huge_body", tenant_id=ODD)  # 500, 64 MiB of HTML
    started = time.monotonic()
    outcomes = {o.customer_id: o for o in await service.check_many([healthy, odd])}
    assert time.monotonic() - started < 1.0  # 256 KB read, the rest never
    assert outcomes[odd].state == State.UNKNOWN and outcomes[odd].error_code == "http_500"
    assert len(outcomes[odd].error_text or "") <= 500
    assert outcomes[healthy].state == State.HEALTHY


async def test_a_trickling_token_endpoint_is_cut_at_the_check_timeout(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    healthy, odd = await _two_customers(sim, db)
    sim.fault("production", "token", "trickle", tenant_id=ODD)
    started = time.monotonic()
    outcomes = {o.customer_id: o for o in await service.check_many([healthy, odd])}
    assert time.monotonic() - started < 1.5  # CHECK_TIMEOUT=1s for the whole check
    assert outcomes[odd].state == State.UNKNOWN and outcomes[odd].error_code == "timeout"
    assert outcomes[healthy].state == State.HEALTHY
    customer = await _customer_row(db, odd)
    assert customer.state == State.UNKNOWN and "timeout" in (customer.state_reason or "")


async def test_the_deadline_covers_token_request_and_probe_together(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    _, odd = await _two_customers(sim, db)
    sim.fault("production", "token", None, tenant_id=ODD, latency=0.6)
    sim.fault("production", "api", None, tenant_id=ODD, latency=0.6)
    started = time.monotonic()
    outcome = await service.check_customer(odd)
    assert time.monotonic() - started < 1.3
    assert outcome.state == State.UNKNOWN and outcome.error_code == "timeout"


async def test_concurrent_checks_of_one_customer_are_all_recorded_and_summed(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    healthy, _ = await _two_customers(sim, db)
    # a person's check, a webhook's and a scheduled one at the same moment, three times
    for _ in range(3):
        await asyncio.gather(
            service.check_customer(healthy),
            service.check_customer(healthy),
            service.check_many([healthy]),
        )
    async with db.transaction() as session:
        rollups = list(await session.scalars(select(CheckRollup)))
        results = list(await session.scalars(select(CheckResult)))
    assert len(results) == 9
    assert sum(r.checks for r in rollups) == 9 and sum(r.failures for r in rollups) == 0
    assert {r.worst_state for r in rollups} == {State.HEALTHY}
    latencies = [(r.token_ms or 0) + (r.probe_ms or 0) for r in results]
    assert sum(r.latency_ms_sum for r in rollups) == sum(latencies)
    assert max(r.latency_ms_max for r in rollups) == max(latencies)


async def test_a_failure_in_the_hour_marks_the_rollups_worst_state(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    healthy, _ = await _two_customers(sim, db)
    await service.check_customer(healthy)
    sim.fault("production", "api", "status", status=403)
    await service.check_customer(healthy)
    sim.fault("production", "api", None)
    await service.check_customer(healthy)
    async with db.transaction() as session:
        rollups = list(await session.scalars(select(CheckRollup)))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # one rollup, or two when the checks straddled an hour boundary: the sums hold either way
    assert len(rollups) in (1, 2) and rollups[-1].hour == hour
    assert sum(r.checks for r in rollups) == 3 and sum(r.failures for r in rollups) == 1
    worst = [r.worst_state for r in rollups if r.failures]
    assert worst == [State.SCOPES_MISSING]


async def test_an_unexpected_error_in_one_check_is_that_customers_outcome_only(
    sim: Simulator, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # A typo in PRODUCTION_API_URL: httpx refuses the URL with an error no client classifies.
    checker = CheckService(_settings(sim, production_api_url="http://[::1/api/v1/"), db)
    sim.approve(HEALTHY, "sandbox", REQUIRED)
    sim.approve(ODD, "production", REQUIRED)
    async with db.transaction() as session:
        sandbox = await add_customer(
            NewCustomer("12345678", "Sandbox", Environment.SANDBOX, HEALTHY),
            session=session,
            state=State.PENDING,
        )
    odd = await _customer(db, "23456789", ODD)
    try:
        outcomes = {o.customer_id: o for o in await checker.check_many([sandbox.id, odd])}
    finally:
        await checker.aclose()
    assert outcomes[sandbox.id].state == State.HEALTHY
    assert outcomes[odd].state == State.FAILING and outcomes[odd].error_code == "check_error"
    assert outcomes[odd].error_text == "the check failed unexpectedly (InvalidURL)"
    assert set(await _results(db)) == {sandbox.id, odd}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "InvalidURL" in errors[0].getMessage()


async def test_scope_names_with_control_characters_are_stored_cleaned(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    healthy, odd = await _two_customers(sim, db)
    body = {"error": "invalid_scope", "scope": "brincr:coun\x00try " + "s" * 300}
    _token_answer(sim, 400, body)
    outcomes = {o.customer_id: o for o in await service.check_many([healthy, odd])}
    assert outcomes[odd].state == State.SCOPES_MISSING
    assert outcomes[odd].missing_scopes == ("brincr:country",)  # the one required scope named
    assert (await _customer_row(db, odd)).missing_scopes == "brincr:country"


async def test_a_check_that_cannot_be_recorded_never_takes_its_batch_with_it(
    sim: Simulator, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    healthy, odd = await _two_customers(sim, db)

    async def alerting_with_a_bug(
        session: AsyncSession, customer: Customer, outcome: CheckOutcome, previous: str
    ) -> None:
        if customer.id == odd:
            raise KeyError("a bug in one listener, for one customer")

    checker = CheckService(_settings(sim), db, listeners=[alerting_with_a_bug])
    try:
        recorded = await checker.check_many([healthy, odd])
    finally:
        await checker.aclose()
    assert [o.customer_id for o in recorded] == [healthy]
    assert set(await _results(db)) == {healthy}  # the odd one's transaction rolled back alone
    assert (await _customer_row(db, healthy)).state == State.HEALTHY
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"(customer {odd}: KeyError)" in errors[0]
