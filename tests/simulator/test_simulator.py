"""The simulator over real HTTP: Visma Connect tokens, the Brincr API, faults, control API."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bot.simulator import (
    DEFAULT_SCOPES,
    Simulator,
    SimulatorError,
    UnknownTenantError,
    serve_forever,
    sign_webhook,
)

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
OTHER_TENANT = "9b2e1c4d-0f3a-4b7e-8c6d-5a4f3e2d1c0b"
CATEGORY, COUNTRY, CUSTOMER = "brincr:category", "brincr:country", "brincr:customer"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield http


async def request_token(
    client: httpx.AsyncClient,
    sim: Simulator,
    *,
    env: str = "sandbox",
    tenant: str | None = TENANT,
    scope: str | None = CATEGORY,
    **fields: str,
) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": f"sim-{env}-client",
        "client_secret": f"sim-{env}-secret",
    }
    if tenant is not None:
        form["tenant_id"] = tenant
    if scope is not None:
        form["scope"] = scope
    form.update(fields)
    return await client.post(sim.token_url(env), data=form)


async def token_for(client: httpx.AsyncClient, sim: Simulator, **kwargs: Any) -> str:
    response = await request_token(client, sim, **kwargs)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def call_api(
    client: httpx.AsyncClient, sim: Simulator, path: str, token: str | None, env: str = "sandbox"
) -> httpx.Response:
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await client.get(sim.api_url(env) + path, headers=headers)


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


# --- tokens ---------------------------------------------------------------------------------


async def test_token_carries_scope_array_tenant_and_lifetime(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY, COUNTRY])

    response = await request_token(client, sim, scope=f"{COUNTRY} {CATEGORY}")

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == f"{COUNTRY} {CATEGORY}"
    claims = jwt_part(body["access_token"], 1)
    assert claims["scope"] == [COUNTRY, CATEGORY]
    assert claims["tenant_id"] == TENANT
    assert claims["client_id"] == "sim-sandbox-client"
    assert claims["iss"] == f"{sim.url}/sandbox"
    assert claims["aud"] == [sim.api_url("sandbox")]
    assert claims["exp"] - claims["nbf"] == 3600
    assert claims["iat"] <= time.time() < claims["exp"]
    assert claims["jti"]
    assert "sub" not in claims


async def test_token_signature_verifies_with_the_published_jwks(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "production", [CATEGORY])
    token = await token_for(client, sim, env="production")

    discovery = (await client.get(f"{sim.url}/production/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == f"{sim.url}/production"
    assert discovery["token_endpoint"] == sim.token_url("production")
    (jwk,) = (await client.get(discovery["jwks_uri"])).json()["keys"]

    header = jwt_part(token, 0)
    assert header["alg"] == "RS256"
    assert header["kid"] == jwk["kid"]
    key = rsa.RSAPublicNumbers(b64url_int(jwk["e"]), b64url_int(jwk["n"])).public_key()
    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    key.verify(raw, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())


async def test_token_accepts_http_basic_client_auth(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    form = {"grant_type": "client_credentials", "tenant_id": TENANT, "scope": CATEGORY}

    response = await client.post(
        sim.token_url("sandbox"), data=form, auth=("sim-sandbox-client", "sim-sandbox-secret")
    )

    assert response.status_code == 200


async def test_token_lifetime_follows_the_app_setting(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.set_app("sandbox", expires_in=120)
    sim.approve(TENANT, "sandbox", [CATEGORY])

    body = (await request_token(client, sim)).json()

    assert body["expires_in"] == 120
    claims = jwt_part(body["access_token"], 1)
    assert claims["exp"] - claims["nbf"] == 120


async def test_empty_scope_grants_every_scope_the_tenant_approved(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CUSTOMER, CATEGORY, "brincr:unregistered"])

    body = (await request_token(client, sim, scope="")).json()

    assert body["scope"] == f"{CUSTOMER} {CATEGORY}"


async def test_identical_token_requests_in_one_burst_share_a_signature(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])

    responses = await asyncio.gather(*(request_token(client, sim) for _ in range(20)))

    assert all(r.status_code == 200 for r in responses)
    assert len({r.json()["access_token"] for r in responses}) <= 2  # 2: a second boundary


@pytest.mark.parametrize("status", [400, 401])
async def test_wrong_secret_is_invalid_client_with_the_configured_status(
    sim: Simulator, client: httpx.AsyncClient, status: int
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.set_options(invalid_client_status=status)

    response = await request_token(client, sim, client_secret="wrong")

    assert response.status_code == status
    assert response.json()["error"] == "invalid_client"
    assert "error_description" in response.json()


async def test_new_secret_refuses_the_old_one_at_once(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    assert (await request_token(client, sim)).status_code == 200

    sim.set_app("sandbox", client_secret="rotated")

    assert (await request_token(client, sim)).json()["error"] == "invalid_client"
    assert (await request_token(client, sim, client_secret="rotated")).status_code == 200


async def test_other_grant_type_is_unsupported(sim: Simulator, client: httpx.AsyncClient) -> None:
    response = await request_token(client, sim, grant_type="password")

    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


async def test_missing_tenant_is_invalid_request(sim: Simulator, client: httpx.AsyncClient) -> None:
    response = await request_token(client, sim, tenant=None)

    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


async def test_tenant_that_never_approved_is_invalid_tenant(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await request_token(client, sim, tenant=OTHER_TENANT)

    assert (response.status_code, response.json()["error"]) == (400, "invalid_tenant")


async def test_removed_tenant_gets_the_configured_unknown_tenant_error(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.remove(TENANT)
    sim.set_options(unknown_tenant_error="invalid_grant")

    response = await request_token(client, sim)

    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


async def test_tenant_approved_in_the_other_environment_is_unknown(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])

    response = await request_token(client, sim, env="production")

    assert response.json()["error"] == "invalid_tenant"


async def test_token_for_revoked_scope_is_refused_naming_the_scope(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY, COUNTRY])
    assert (await request_token(client, sim, scope=f"{CATEGORY} {COUNTRY}")).status_code == 200

    sim.revoke(TENANT, [COUNTRY])  # same second: the token cache must not hide this
    response = await request_token(client, sim, scope=f"{CATEGORY} {COUNTRY}")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert response.json()["scope"] == COUNTRY


async def test_invalid_scope_carries_no_scope_member_when_switched_off(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.set_options(name_scope_in_error=False)

    response = await request_token(client, sim, scope=f"{CATEGORY} {COUNTRY}")

    assert response.status_code == 400
    assert set(response.json()) == {"error", "error_description"}
    assert response.json()["error"] == "invalid_scope"


async def test_scope_not_registered_for_the_app_is_invalid_scope(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.set_app("sandbox", scopes=[CATEGORY])

    response = await request_token(client, sim, scope=f"{CATEGORY} {COUNTRY}")

    assert response.json() == {
        "error": "invalid_scope",
        "error_description": "scope not allowed for this client",
        "scope": COUNTRY,
    }


async def test_downscope_issues_a_token_with_only_the_granted_scopes(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.set_options(partial_scopes="downscope")

    body = (await request_token(client, sim, scope=f"{COUNTRY} {CATEGORY}")).json()
    nothing_granted = await request_token(client, sim, scope=COUNTRY)

    assert body["scope"] == CATEGORY
    assert jwt_part(body["access_token"], 1)["scope"] == [CATEGORY]
    assert nothing_granted.json()["error"] == "invalid_scope"


# --- the Brincr API -------------------------------------------------------------------------


async def test_api_serves_sample_data_for_a_valid_token(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)

    response = await call_api(client, sim, "categories", token)

    assert response.status_code == 200
    assert {"id": 1, "name": "Ruwbouw"} in response.json()["data"]
    assert (await call_api(client, sim, "unscoped/thing", token)).status_code == 200


async def test_api_without_token_is_unauthenticated(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await call_api(client, sim, "categories", None)

    assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})


async def test_api_refuses_a_tampered_token(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    header, payload, signature = (await token_for(client, sim)).split(".")
    claims = jwt_part(f"{header}.{payload}", 1) | {"scope": list(DEFAULT_SCOPES)}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    response = await call_api(client, sim, "countries", f"{header}.{forged}.{signature}")

    assert response.status_code == 401


async def test_api_refuses_a_token_of_the_other_environment(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)

    response = await call_api(client, sim, "categories", token, env="production")

    assert response.status_code == 401


async def test_api_refuses_an_expired_token(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.set_app("sandbox", expires_in=1)
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)
    await asyncio.sleep(max(0.0, jwt_part(token, 1)["exp"] - time.time()) + 0.01)

    response = await call_api(client, sim, "categories", token)

    assert response.status_code == 401


async def test_api_answers_403_for_a_scope_missing_from_the_token(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY, COUNTRY])
    token = await token_for(client, sim, scope=CATEGORY)

    response = await call_api(client, sim, "countries", token)

    assert response.status_code == 403
    assert "message" in response.json()


async def test_api_honours_a_token_issued_before_a_scope_was_revoked(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)
    sim.revoke(TENANT, [CATEGORY])

    assert (await call_api(client, sim, "categories", token)).status_code == 200


async def test_api_refuses_an_old_token_once_the_tenant_removed_the_app(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)
    sim.remove(TENANT)

    response = await call_api(client, sim, "categories", token)

    assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})


# --- faults and latency ---------------------------------------------------------------------


async def test_down_answers_plain_text_503(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.fault("sandbox", "token", "down")

    response = await request_token(client, sim)

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/plain")


async def test_server_error_answers_500_with_an_oauth_error_body(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)
    sim.fault("sandbox", "token", "server_error")
    sim.fault("sandbox", "api", "server_error")

    token_response = await request_token(client, sim)
    api_response = await call_api(client, sim, "categories", token)

    assert (token_response.status_code, token_response.json()["error"]) == (500, "server_error")
    assert api_response.status_code == 500


@pytest.mark.parametrize("service", ["token", "api"])
async def test_rate_limit_answers_429_with_retry_after(
    sim: Simulator, client: httpx.AsyncClient, service: str
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)
    sim.fault("sandbox", service, "rate_limit", retry_after=7)

    if service == "token":
        response = await request_token(client, sim)
    else:
        response = await call_api(client, sim, "categories", token)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


async def test_status_fault_for_one_tenant_leaves_the_others_alone(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.approve(OTHER_TENANT, "sandbox", [CATEGORY])
    broken = await token_for(client, sim)
    fine = await token_for(client, sim, tenant=OTHER_TENANT)
    sim.fault("sandbox", "api", "status", status=403, tenant_id=TENANT)

    assert (await call_api(client, sim, "categories", broken)).status_code == 403
    assert (await call_api(client, sim, "categories", fine)).status_code == 200

    sim.fault("sandbox", "api", None, tenant_id=TENANT)
    assert (await call_api(client, sim, "categories", broken)).status_code == 200


async def test_timeout_hangs_until_the_client_gives_up(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.fault("sandbox", "token", "timeout")

    with pytest.raises(httpx.ReadTimeout):
        await client.post(sim.token_url("sandbox"), data={}, timeout=0.2)

    sim.fault("sandbox", "token", None)
    assert (await request_token(client, sim)).status_code == 200


async def test_constructor_latency_delays_every_answer(client: httpx.AsyncClient) -> None:
    async with Simulator(latency=0.2) as sim:
        sim.approve(TENANT, "sandbox", [CATEGORY])
        started = time.perf_counter()
        await request_token(client, sim)
        assert time.perf_counter() - started >= 0.2


async def test_fault_latency_slows_one_service_without_blocking_other_requests(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)
    sim.fault("sandbox", "api", None, latency=0.3)

    started = time.perf_counter()
    responses = await asyncio.gather(
        *(call_api(client, sim, "categories", token) for _ in range(10))
    )
    elapsed = time.perf_counter() - started
    token_started = time.perf_counter()
    await request_token(client, sim)

    assert all(r.status_code == 200 for r in responses)
    assert 0.3 <= elapsed < 0.9
    assert time.perf_counter() - token_started < 0.3


# --- counters, control, reset ---------------------------------------------------------------


async def test_counters_count_every_request_including_failures(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    token = await token_for(client, sim)
    await request_token(client, sim, tenant=OTHER_TENANT)  # invalid_tenant
    await request_token(client, sim, env="production")  # invalid_tenant
    await call_api(client, sim, "categories", token)
    await call_api(client, sim, "categories", None)  # 401

    assert sim.counters.token_requests() == 3
    assert sim.counters.token_requests("sandbox") == 2
    assert sim.counters.token_requests(tenant_id=TENANT) == 2
    assert sim.counters.token_requests("production", OTHER_TENANT) == 0
    assert sim.counters.api_requests() == 2
    assert sim.counters.api_requests("sandbox", TENANT) == 1
    assert sim.counters.as_dict()["token_requests"]["by_environment"] == {
        "sandbox": 2,
        "production": 1,
    }


async def test_the_timeline_counts_requests_by_when_they_arrived(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    before = int(time.time() * 10)
    token = await token_for(client, sim)
    await request_token(client, sim, tenant=OTHER_TENANT)  # refused, still counted
    await call_api(client, sim, "categories", token)
    after = int(time.time() * 10)

    timeline = (await client.get(f"{sim.url}/_control/timeline")).json()
    assert timeline["slots_per_second"] == 10
    tokens = {int(slot): n for slot, n in timeline["token_requests"].items()}
    assert sum(tokens.values()) == 2 and all(before <= s <= after for s in tokens)
    assert sum(timeline["api_requests"].values()) == 1


async def test_control_api_drives_tenants_faults_and_options(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    control = f"{sim.url}/_control"
    approved = await client.post(
        f"{control}/tenants",
        json={"tenant_id": TENANT, "environment": "sandbox", "scopes": [CATEGORY, COUNTRY]},
    )
    assert approved.status_code == 200
    assert approved.json()["tenants"][TENANT]["scopes"] == [CATEGORY, COUNTRY]

    await client.post(f"{control}/tenants/{TENANT}/revoke", json={"scopes": [COUNTRY]})
    await client.post(f"{control}/options", json={"name_scope_in_error": False})
    refused = await request_token(client, sim, scope=COUNTRY)
    assert set(refused.json()) == {"error", "error_description"}

    await client.post(
        f"{control}/faults", json={"environment": "sandbox", "service": "token", "mode": "down"}
    )
    assert (await request_token(client, sim)).status_code == 503
    await client.post(
        f"{control}/faults", json={"environment": "sandbox", "service": "token", "mode": None}
    )

    await client.delete(f"{control}/tenants/{TENANT}")
    assert (await request_token(client, sim)).json()["error"] == "invalid_tenant"

    state = (await client.get(f"{control}/state")).json()
    assert state["tenants"][TENANT]["removed"] is True
    assert state["counters"]["token_requests"]["total"] == 3
    assert (await client.get(f"{control}/counters")).json() == state["counters"]


async def test_control_api_changes_the_app_and_never_shows_secrets(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        f"{sim.url}/_control/apps/production",
        json={"client_secret": "s3cret-value", "scopes": [CATEGORY], "expires_in": 60},
    )

    assert response.status_code == 200
    assert response.json()["apps"]["production"]["expires_in"] == 60
    assert "s3cret-value" not in response.text
    assert sim.settings_env()["PRODUCTION_CLIENT_SECRET"] == "s3cret-value"


@pytest.mark.parametrize(
    ("path", "body", "problem"),
    [
        ("/tenants", {"tenant_id": TENANT, "environment": "sandbox", "scopes": "x y"}, "scopes"),
        ("/tenants", {"tenant_id": TENANT, "environment": "staging", "scopes": []}, "staging"),
        ("/tenants", {"environment": "sandbox", "scopes": []}, "tenant_id"),
        ("/faults", {"environment": "sandbox", "service": "token", "mode": "flaky"}, "mode"),
        ("/faults", {"environment": "sandbox", "service": "api", "mode": "status"}, "status"),
        ("/options", {"partial_scopes": "maybe"}, "partial_scopes"),
        ("/options", {"colour": "blue"}, "colour"),
        ("/apps/sandbox", [1, 2], "JSON object"),
    ],
)
async def test_control_api_names_the_problem_of_a_bad_body(
    sim: Simulator, client: httpx.AsyncClient, path: str, body: Any, problem: str
) -> None:
    response = await client.post(f"{sim.url}/_control{path}", json=body)

    assert response.status_code == 400
    assert problem in response.json()["error"]


async def test_control_api_answers_404_for_an_unknown_tenant(
    sim: Simulator, client: httpx.AsyncClient
) -> None:
    response = await client.delete(f"{sim.url}/_control/tenants/{OTHER_TENANT}")

    assert response.status_code == 404
    with pytest.raises(UnknownTenantError):
        sim.revoke(OTHER_TENANT, [CATEGORY])
    with pytest.raises(SimulatorError):
        sim.fault("staging", "token", "down")


async def test_reset_returns_to_the_defaults(sim: Simulator, client: httpx.AsyncClient) -> None:
    sim.approve(TENANT, "sandbox", [CATEGORY])
    sim.set_app("sandbox", client_secret="other")
    sim.fault("sandbox", "token", "down")
    sim.set_options(unknown_tenant_error="unauthorized_client")
    await request_token(client, sim)

    response = await client.post(f"{sim.url}/_control/reset")

    state = response.json()
    assert state["tenants"] == {} and state["faults"] == []
    assert state["counters"]["token_requests"]["total"] == 0
    assert state["options"]["unknown_tenant_error"] == "invalid_tenant"
    assert (await request_token(client, sim)).json()["error"] == "invalid_tenant"


async def test_settings_env_points_both_environments_here(sim: Simulator) -> None:
    env = sim.settings_env()

    assert env["PRODUCTION_CLIENT_ID"] == "sim-production-client"
    assert env["SANDBOX_CLIENT_SECRET"] == "sim-sandbox-secret"
    assert env["SANDBOX_TOKEN_URL"] == f"{sim.url}/sandbox/connect/token"
    assert env["PRODUCTION_API_URL"] == f"{sim.url}/production/api/v1/"


async def test_serve_forever_runs_until_cancelled(client: httpx.AsyncClient) -> None:
    started: asyncio.Queue[Simulator] = asyncio.Queue()
    task = asyncio.create_task(serve_forever("127.0.0.1", 0, on_start=started.put_nowait))
    sim = await asyncio.wait_for(started.get(), 5)

    assert (await client.get(f"{sim.url}/_control/state")).status_code == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- webhooks -------------------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/webhooks/visma", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}/webhooks/visma", received
    await runner.cleanup()


async def test_approval_and_removal_are_delivered_as_signed_webhooks(
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, received = receiver
    async with Simulator(webhook_url=url, webhook_secret="whsec", application_id="app-1") as sim:
        sim.approve(TENANT, "sandbox", [CATEGORY])
        sim.approve(TENANT, "sandbox", [CATEGORY, COUNTRY])  # a change, not a new approval
        await sim.flush_webhooks()
        sim.remove(TENANT)
        await sim.flush_webhooks()

    assert [h["x-vwd-event-id"] for h, _ in received] == [
        "tenant_application_added",
        "tenant_application_deleted",
    ]
    for headers, body in received:
        assert headers["X-VWD-Signature-V1"] == sign_webhook("whsec", body)
        assert headers["x-vwd-tenant-id"] == TENANT
        assert headers["x-vwd-application-id"] == "app-1"
        assert headers["x-vwd-notification-id"]
        assert headers["x-vwd-notification-timestamp"].endswith("Z")
    first = received[0][0]
    assert json.loads(received[0][1]) == {
        "notificationId": first["x-vwd-notification-id"],
        "timestamp": first["x-vwd-notification-timestamp"],
        "tenantId": TENANT,
        "applicationId": "app-1",
        "eventType": "tenant_application_added",
        "environment": "sandbox",
    }


async def test_failed_webhook_delivery_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with Simulator(webhook_url="http://127.0.0.1:9/nowhere", webhook_secret="s") as sim:
        sim.approve(TENANT, "sandbox", [CATEGORY])
        await sim.flush_webhooks()

    assert "webhook tenant_application_added" in caplog.text
