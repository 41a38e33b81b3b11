"""Checks against the Visma/Brincr stand-in over real HTTP, recorded in a real database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from bot.checks.service import CheckService, app_wide_problems
from bot.domain import Environment, State
from bot.domain.outcomes import TokenOutcome
from bot.settings import Settings, load_settings
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import Customer

T1 = "11111111-1111-4111-8111-111111111111"
T2 = "22222222-2222-4222-8222-222222222222"
REQUIRED = ["brincr:category", "brincr:country", "brincr:customer"]


def _settings(sim: Simulator, **extra: object) -> Settings:
    values: dict[str, object] = {k.lower(): v for k, v in sim.settings_env().items()}
    values.update(brincr_scopes=" ".join(REQUIRED), **extra)
    return load_settings(**values)


@pytest.fixture
async def service(sim: Simulator, db: Database) -> AsyncIterator[CheckService]:
    checker = CheckService(_settings(sim), db, timeout=httpx.Timeout(1.0))
    yield checker
    await checker.aclose()


async def _customer(db: Database, kvk: str = "12345678", tenant: str = T1) -> int:
    async with db.transaction() as session:
        customer = await add_customer(
            NewCustomer(kvk, f"Klant {kvk}", Environment.PRODUCTION, tenant),
            session=session,
            state=State.PENDING,
        )
        return customer.id


async def _state(db: Database, customer_id: int) -> Customer:
    async with db.transaction() as session:
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        return customer


async def test_a_healthy_check_costs_one_token_request_and_one_probe(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    sim.approve(T1, "production", REQUIRED)
    cid = await _customer(db)
    outcome = await service.check_customer(cid)
    assert outcome.state == State.HEALTHY and outcome.probe_status == 200
    assert set(outcome.granted_scopes) >= set(REQUIRED) and outcome.missing_scopes == ()
    assert sim.counters.token_requests() == 1 and sim.counters.api_requests() == 1
    customer = await _state(db, cid)
    assert customer.state == "healthy" and customer.next_check_at is not None


async def test_a_revoked_scope_is_named_without_extra_requests(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    sim.approve(T1, "production", REQUIRED)
    sim.revoke(T1, ["brincr:country"])
    cid = await _customer(db)
    outcome = await service.check_customer(cid)
    assert outcome.state == State.SCOPES_MISSING
    assert outcome.missing_scopes == ("brincr:country",)
    assert sim.counters.token_requests() == 1 and sim.counters.api_requests() == 0
    assert (await _state(db, cid)).missing_scopes == "brincr:country"


async def test_narrowing_unnamed_scopes_costs_at_most_one_request_per_scope_once(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    sim.set_options(name_scope_in_error=False)
    sim.approve(T1, "production", REQUIRED)
    sim.revoke(T1, ["brincr:customer"])
    cid = await _customer(db)
    first = await service.check_customer(cid)
    assert first.missing_scopes == ("brincr:customer",)
    assert first.extra_token_requests == len(REQUIRED)
    assert sim.counters.token_requests() == 1 + len(REQUIRED)
    second = await service.check_customer(cid)  # same outcome: nothing to narrow again
    assert second.missing_scopes == ("brincr:customer",) and second.extra_token_requests == 0
    assert sim.counters.token_requests() == 2 + len(REQUIRED)


async def test_a_downscoped_token_names_the_scopes_it_lacks(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    sim.set_options(partial_scopes="downscope")
    sim.approve(T1, "production", REQUIRED[:2])
    outcome = await service.check_customer(await _customer(db))
    assert outcome.state == State.SCOPES_MISSING and outcome.missing_scopes == (REQUIRED[2],)
    assert sim.counters.api_requests() == 0


async def test_the_app_removed_from_the_tenant_is_revoked(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    sim.approve(T1, "production", REQUIRED)
    sim.remove(T1)
    cid = await _customer(db)
    outcome = await service.check_customer(cid)
    assert outcome.state == State.REVOKED and outcome.token_outcome == TokenOutcome.TENANT_ACCESS
    assert outcome.error_code == "invalid_tenant"
    assert (await _state(db, cid)).state == "revoked"


async def test_a_wrong_client_secret_is_one_app_wide_problem(sim: Simulator, db: Database) -> None:
    sim.approve(T1, "production", REQUIRED)
    sim.approve(T2, "production", REQUIRED)
    settings = _settings(sim, production_client_secret="wrong")
    checker = CheckService(settings, db)
    try:
        ids = [await _customer(db, "12345678", T1), await _customer(db, "23456789", T2)]
        outcomes = await checker.check_many(ids)
    finally:
        await checker.aclose()
    assert {o.state for o in outcomes} == {State.UNKNOWN}  # never the customers' fault
    assert {o.token_outcome for o in outcomes} == {TokenOutcome.APP_CREDENTIALS}
    problems = app_wide_problems(outcomes)
    assert len(problems) == 1 and "invalid_client" in problems[0]
    assert "wrong" not in problems[0]


@pytest.mark.parametrize("mode", ["server_error", "down", "timeout"])
async def test_visma_trouble_is_unknown_never_revoked(
    sim: Simulator, service: CheckService, db: Database, mode: str
) -> None:
    sim.approve(T1, "production", REQUIRED)
    sim.fault("production", "token", mode)
    cid = await _customer(db)
    outcome = await service.check_customer(cid)
    assert outcome.state == State.UNKNOWN and outcome.token_outcome == TokenOutcome.TRANSIENT
    assert (await _state(db, cid)).consecutive_failures == 0


async def test_a_429_backs_off_at_least_retry_after_without_retrying(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    sim.approve(T1, "production", REQUIRED)
    sim.fault("production", "token", "rate_limit", retry_after=600)
    cid = await _customer(db)
    outcome = await service.check_customer(cid)
    assert outcome.token_outcome == TokenOutcome.RATE_LIMITED and outcome.retry_after == 600
    assert sim.counters.token_requests() == 1  # no retry storm
    customer = await _state(db, cid)
    assert customer.next_check_at is not None and customer.last_check_at is not None
    assert customer.next_check_at - customer.last_check_at >= timedelta(seconds=600)


@pytest.mark.parametrize(
    ("status", "state"),
    [(401, State.REVOKED), (403, State.SCOPES_MISSING), (500, State.UNKNOWN)],
)
async def test_brincr_answers_map_to_states(
    sim: Simulator, service: CheckService, db: Database, status: int, state: State
) -> None:
    sim.approve(T1, "production", REQUIRED)
    sim.fault("production", "api", "status", status=status)
    outcome = await service.check_customer(await _customer(db))
    assert outcome.state == state and outcome.probe_status == status


async def test_failing_waits_for_the_threshold(
    sim: Simulator, service: CheckService, db: Database
) -> None:
    sim.approve(T1, "production", REQUIRED)
    cid = await _customer(db)
    await service.check_customer(cid)
    sim.fault("production", "api", "status", status=404)
    await service.check_customer(cid)
    assert (await _state(db, cid)).state == "healthy"  # one failure: below FAILURE_THRESHOLD=2
    await service.check_customer(cid)
    assert (await _state(db, cid)).state == "failing"
    sim.fault("production", "api", None)
    await service.check_customer(cid)
    customer = await _state(db, cid)
    assert customer.state == "healthy" and customer.consecutive_failures == 0


async def test_an_environment_without_credentials_is_not_configured(
    sim: Simulator, db: Database
) -> None:
    settings = load_settings(brincr_scopes="brincr:category", production_client_id="")
    checker = CheckService(settings, db)
    try:
        outcome = await checker.check_customer(await _customer(db))
    finally:
        await checker.aclose()
    assert outcome.state == State.UNKNOWN and outcome.error_code == "not_configured"
    assert "credentials not configured" in (outcome.error_text or "")
    assert sim.counters.token_requests() == 0


async def test_no_secret_or_token_reaches_the_logs(
    sim: Simulator, service: CheckService, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.approve(T1, "production", REQUIRED)
    sim.approve(T2, "production", REQUIRED)
    sim.revoke(T2, ["brincr:country"])
    ids = [await _customer(db, "12345678", T1), await _customer(db, "23456789", T2)]
    outcomes = await service.check_many(ids)
    assert {o.state for o in outcomes} == {State.HEALTHY, State.SCOPES_MISSING}
    secret = sim.settings_env()["PRODUCTION_CLIENT_SECRET"]
    text = caplog.text + repr(outcomes)
    assert secret not in text
    assert "eyJ" not in text  # no JWT
