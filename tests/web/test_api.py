"""The read-only HTTP API on the running bot: bearer tokens, stored state only, its OpenAPI
document valid and true to the answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment
from bot.simulator import Simulator
from bot.web.api import token_matches
from tests.harness import SCOPES, BotHarness, start_bot

TOKEN = "api-token-one-0123456789"
OTHER = "api-token-two-9876543210"


@pytest.fixture
async def api_bot(database_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(database_url, slack, sim, api_tokens=f"{TOKEN},{OTHER}")
    yield harness
    await harness.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A response schema with the document's components, for jsonschema (OpenAPI 3.0's
    ``nullable`` becomes a JSON Schema type union)."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: convert(v) for k, v in node.items() if k != "nullable"}
            if node.get("nullable"):
                out = {"anyOf": [out, {"type": "null"}]}
            return out
        if isinstance(node, list):
            return [convert(item) for item in node]
        if isinstance(node, str) and node.startswith("#/components/schemas/"):
            return node.replace("#/components/schemas/", "#/$defs/")
        return node

    defs = convert(document["components"]["schemas"])
    return {"$ref": f"#/$defs/{name}", "$defs": defs}


async def _add_checked(bot: BotHarness, kvk: str, name: str, **kwargs: Any) -> int:
    customer_id = await bot.add_customer(kvk, name, **kwargs)
    await bot.runtime.bot.checker.check_customer(customer_id)
    return customer_id


async def test_the_api_answers_401_200_and_404_without_asking_upstream(
    api_bot: BotHarness, sim: Simulator
) -> None:
    bot = api_bot
    await _add_checked(bot, "12345678", "Bouwbedrijf De Vries")
    await _add_checked(bot, "23456789", "Dakwerken Jansen", approve=SCOPES[:2])
    await bot.add_customer("34567890", "Nog niet gecontroleerd")
    sim.counters.reset()
    url = bot.url + "/api/v1"
    assert (await bot.http.get(f"{url}/customers")).status_code == 401
    wrong = await bot.http.get(f"{url}/customers", headers=_auth("guess"))
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    basic = await bot.http.get(f"{url}/customers", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert (await bot.http.get(f"{url}/customers/12345678")).status_code == 401

    listing = await bot.http.get(f"{url}/customers", headers=_auth(TOKEN))
    assert listing.status_code == 200
    page = listing.json()
    assert page["total"] == 3 and [c["kvk"] for c in page["customers"]] == [
        "12345678", "23456789", "34567890"]  # fmt: skip
    detail = (await bot.http.get(f"{url}/customers/2345.6789", headers=_auth(OTHER))).json()
    assert detail["state"] == "scopes_missing" and detail["missing_scopes"] == ["brincr:order"]
    assert sorted(detail["granted_scopes"]) == sorted(SCOPES[:2])
    assert detail["last_check"]["token"] and detail["last_checked_at"].endswith("Z")
    assert detail["open_incident"]["state"] == "scopes_missing"
    unknown = await bot.http.get(f"{url}/customers/99999999", headers=_auth(TOKEN))
    assert unknown.status_code == 404 and "99999999" in unknown.json()["error"]
    bad = await bot.http.get(f"{url}/customers/not-a-kvk", headers=_auth(TOKEN))
    assert bad.status_code == 404
    assert sim.counters.token_requests() == 0 and sim.counters.api_requests() == 0


async def test_the_list_filters_by_state_and_environment_and_pages(api_bot: BotHarness) -> None:
    bot = api_bot
    for i in range(5):
        await bot.add_customer(f"1000000{i}", f"Klant {i}")
    await bot.add_customer("20000000", "Sandbox klant", env=Environment.SANDBOX)
    url = bot.url + "/api/v1/customers"
    first = (await bot.http.get(url, params={"limit": 2}, headers=_auth(TOKEN))).json()
    assert [c["kvk"] for c in first["customers"]] == ["10000000", "10000001"]
    assert first["total"] == 6 and first["next_offset"] == 2
    last = (await bot.http.get(url, params={"limit": 2, "offset": 4}, headers=_auth(TOKEN))).json()
    assert len(last["customers"]) == 2 and last["next_offset"] is None
    sandbox = await bot.http.get(url, params={"environment": "sandbox"}, headers=_auth(TOKEN))
    assert [c["kvk"] for c in sandbox.json()["customers"]] == ["20000000"]
    pending = await bot.http.get(url, params={"state": "pending,healthy"}, headers=_auth(TOKEN))
    assert pending.json()["total"] == 6
    healthy = await bot.http.get(url, params={"state": "healthy"}, headers=_auth(TOKEN))
    assert healthy.json()["total"] == 0
    wrong = await bot.http.get(url, params={"state": "broken"}, headers=_auth(TOKEN))
    assert wrong.status_code == 400 and "unknown state broken" in wrong.json()["error"]
    too_big = await bot.http.get(url, params={"limit": 10_000}, headers=_auth(TOKEN))
    assert too_big.status_code == 400
    for odd in ("²", "٣", "1" * 5000, "-1", " 2"):  # Unicode digits: a 400, never a 500
        answer = await bot.http.get(url, params={"limit": odd}, headers=_auth(TOKEN))
        assert answer.status_code == 400 and "whole number" in answer.json()["error"], odd
        answer = await bot.http.get(url, params={"offset": odd}, headers=_auth(TOKEN))
        assert answer.status_code == 400, odd


async def test_the_openapi_document_is_valid_and_describes_the_answers(
    api_bot: BotHarness,
) -> None:
    bot = api_bot
    await _add_checked(bot, "12345678", "Bouwbedrijf De Vries", approve=SCOPES[:1])
    await bot.add_customer("23456789", "Nog niet gecontroleerd")
    url = bot.url + "/api/v1"
    document = (await bot.http.get(f"{url}/openapi.json")).json()
    validate(document)  # raises when not a valid OpenAPI 3 document
    page = (await bot.http.get(f"{url}/customers", headers=_auth(TOKEN))).json()
    jsonschema.validate(page, _schema_of(document, "CustomerPage"))
    for kvk in ("12345678", "23456789"):
        detail = (await bot.http.get(f"{url}/customers/{kvk}", headers=_auth(TOKEN))).json()
        jsonschema.validate(detail, _schema_of(document, "CustomerDetail"))
    missing = (await bot.http.get(f"{url}/customers/99999999", headers=_auth(TOKEN))).json()
    jsonschema.validate(missing, _schema_of(document, "Error"))


async def test_without_api_tokens_the_api_is_not_there(bot: BotHarness) -> None:
    for path in ("/api/v1/customers", "/api/v1/openapi.json", "/api/v1/customers/12345678"):
        response = await bot.http.get(bot.url + path, headers=_auth(TOKEN))
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("header", "ok"),
    [(f"Bearer {TOKEN}", True), (f"bearer {OTHER}", True), (f"Bearer {TOKEN}x", False),
     ("Bearer ", False), (None, False), (TOKEN, False), (f"Bearer {TOKEN[:-1]}", False)],
)  # fmt: skip
def test_token_matching(header: str | None, ok: bool) -> None:
    assert token_matches(header, [TOKEN.encode(), OTHER.encode()]) is ok


async def test_a_token_is_never_logged(
    api_bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with httpx.AsyncClient() as client:
        await client.get(api_bot.url + "/api/v1/customers", headers=_auth("wrong-secret-token"))
        await client.get(api_bot.url + "/api/v1/customers", headers=_auth(TOKEN))
    assert "wrong-secret-token" not in caplog.text and TOKEN not in caplog.text


async def test_refusals_tell_nothing_about_customers_and_follow_the_error_schema(
    api_bot: BotHarness,
) -> None:
    bot = api_bot
    await bot.add_customer("12345678", "Bouwbedrijf De Vries")
    url = bot.url + "/api/v1"
    error = _schema_of((await bot.http.get(f"{url}/openapi.json")).json(), "Error")
    known = await bot.http.get(f"{url}/customers/12345678", headers=_auth("guess"))
    unknown = await bot.http.get(f"{url}/customers/99999999", headers=_auth("guess"))
    malformed = await bot.http.get(f"{url}/customers/not-a-kvk")
    # no existence oracle: without a valid token every customer path answers the same
    assert [r.status_code for r in (known, unknown, malformed)] == [401, 401, 401]
    assert known.json() == unknown.json() == malformed.json()
    jsonschema.validate(known.json(), error)
    for query in ("limit=0", "offset=-1", "state=sleeping", "environment=staging"):
        bad = await bot.http.get(f"{url}/customers?{query}", headers=_auth(TOKEN))
        assert bad.status_code == 400, query
        assert bad.headers["Content-Type"].startswith("application/json"), query
        jsonschema.validate(bad.json(), error)
