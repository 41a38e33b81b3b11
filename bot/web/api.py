"""The read-only HTTP API (``/api/v1/…``): customers' stored state as JSON for scripts and
dashboards. It never runs a check and never calls Visma or Brincr: it reads what the
scheduled checks stored.

``Authorization: Bearer <one of API_TOKENS>``, compared in constant time against every token
(rotation: keep the old and the new one for a while). Without ``API_TOKENS`` the API is off
and its paths answer 404 like any unknown path. The OpenAPI 3 document
(:mod:`bot.web.api_schema`) is served without a token: it describes, it does not disclose.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.domain import Environment, State, normalize_kvk
from bot.settings import Settings
from bot.web.api_schema import openapi_document
from storage.db import Database
from storage.facts import CustomerFacts
from storage.models import CheckResult, Incident
from storage.reporting import customer_detail, customers_page

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIX = "/api/v1"
DEFAULT_LIMIT = 100
MAX_LIMIT = 500


def add_api_routes(app: web.Application, db: Database, settings: Settings) -> None:
    """Add the API's routes to ``app``; nothing when ``API_TOKENS`` is empty (404)."""
    tokens = [t.get_secret_value().encode() for t in settings.api_tokens]
    if not tokens:
        return
    app.router.add_get(f"{PREFIX}/openapi.json", _openapi)
    app.router.add_get(f"{PREFIX}/customers", _authorized(tokens, _list(db)))
    app.router.add_get(f"{PREFIX}/customers/{{kvk}}", _authorized(tokens, _detail(db)))


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def token_matches(header: str | None, tokens: list[bytes]) -> bool:
    """True when ``header`` is ``Bearer <token>`` for one of ``tokens``; every token is
    compared (in constant time), so timing tells nothing about which came close."""
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    given = presented.strip().encode("utf-8", "replace")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token)
    return matched


def _authorized(tokens: list[bytes], handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not token_matches(request.headers.get("Authorization"), tokens):
            log.info("api request refused: no valid bearer token (%s)", request.path[:80])
            return _error(401, "a valid bearer token is required",
                          **{"WWW-Authenticate": 'Bearer realm="brincr-bot"'})  # fmt: skip
        return await handler(request)

    return guarded


async def _openapi(_request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _choices(request: web.Request, name: str, allowed: set[str]) -> list[str]:
    values = [v.strip() for raw in request.query.getall(name, []) for v in raw.split(",")]
    values = [v for v in values if v]
    bad = [v[:40] for v in values if v not in allowed]
    if bad:
        raise _bad_request(f"unknown {name} {', '.join(bad)}; one of {', '.join(sorted(allowed))}")
    return values


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _bounded_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, str(default))
    # ASCII digits only: "²".isdigit() is True, but int("²") raises (a 500, not a 400)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise _bad_request(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _list(db: Database) -> Handler:
    async def list_customers(request: web.Request) -> web.Response:
        states = _choices(request, "state", {s.value for s in State})
        environments = _choices(request, "environment", {e.value for e in Environment})
        limit = _bounded_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _bounded_int(request, "offset", 0, 0, 10**9)
        async with db.transaction() as session:
            page = await customers_page(
                session=session, states=states, environments=environments,
                offset=offset, limit=limit,
            )  # fmt: skip
        more = offset + len(page.customers) < page.total
        body = {
            "customers": [customer_json(facts) for facts in page.customers],
            "total": page.total,
            "offset": offset,
            "limit": limit,
            "next_offset": offset + limit if more else None,
        }
        return web.json_response(body)

    return list_customers


def _detail(db: Database) -> Handler:
    async def one_customer(request: web.Request) -> web.Response:
        kvk = normalize_kvk(request.match_info["kvk"])
        if kvk is None:
            return _error(404, "no customer with that KvK number (8 digits)")
        async with db.transaction() as session:
            found = await customer_detail(kvk, session=session)
        if found is None:
            return _error(404, f"no customer with KvK {kvk}")
        body = customer_json(found)
        body["last_check"] = check_json(found.last)
        return web.json_response(body)

    return one_customer


def customer_json(facts: CustomerFacts) -> dict[str, Any]:
    customer = facts.customer
    return {
        "kvk": customer.kvk,
        "name": customer.name,
        "environment": customer.environment,
        "tenant_id": customer.tenant_id,
        "account_manager": customer.account_manager,
        "state": customer.state,
        "state_since": _iso(customer.state_since),
        "state_reason": customer.state_reason,
        "granted_scopes": facts.granted_scopes,
        "missing_scopes": facts.missing_scopes,
        "rollout_missing_scopes": facts.rollout_missing_scopes,
        "last_checked_at": _iso(customer.last_check_at),
        "snoozed_until": _iso(customer.snoozed_until),
        "open_incident": incident_json(facts.incident),
    }


def incident_json(incident: Incident | None) -> dict[str, Any] | None:
    if incident is None:
        return None
    return {
        "id": incident.id,
        "state": incident.state,
        "reason": incident.reason,
        "opened_at": _iso(incident.opened_at),
        "acknowledged_by": incident.acknowledged_by,
        "acknowledged_at": _iso(incident.acknowledged_at),
    }


def check_json(result: CheckResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "checked_at": _iso(result.checked_at),
        "state": result.state,
        "token": result.token_outcome,
        "probe_status": result.probe_status,
        "token_ms": result.token_ms,
        "probe_ms": result.probe_ms,
        "error_code": result.error_code,
        "error": result.error_text,
    }
