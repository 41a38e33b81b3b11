"""The OpenAPI 3.0 document of the read-only API (bot/web/api.py), served at
``/api/v1/openapi.json``. tests/web/test_api.py validates it against the OpenAPI schema and checks
real answers against its response schemas, so it stays true to the code."""

from __future__ import annotations

from typing import Any

from bot.domain import Environment, State

_TIME = {"type": "string", "format": "date-time", "description": "UTC, ISO 8601"}
_NULLABLE_TIME = {**_TIME, "nullable": True}
_SCOPES = {"type": "array", "items": {"type": "string"}}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _nullable(ref: str) -> dict[str, Any]:
    return {"allOf": [{"$ref": f"#/components/schemas/{ref}"}], "nullable": True}


def _schemas() -> dict[str, Any]:
    incident = {
        "type": "object",
        "required": ["id", "state", "opened_at"],
        "properties": {
            "id": {"type": "integer"},
            "state": {"type": "string"},
            "reason": {"type": "string", "nullable": True},
            "opened_at": _TIME,
            "acknowledged_by": {"type": "string", "nullable": True},
            "acknowledged_at": _NULLABLE_TIME,
        },
    }
    check = {
        "type": "object",
        "required": ["checked_at", "state", "token"],
        "properties": {
            "checked_at": _TIME,
            "state": {"type": "string"},
            "token": {"type": "string", "description": "outcome of the token request"},
            "probe_status": {"type": "integer", "nullable": True},
            "token_ms": {"type": "integer", "nullable": True},
            "probe_ms": {"type": "integer", "nullable": True},
            "error_code": {"type": "string", "nullable": True},
            "error": {"type": "string", "nullable": True, "description": "upstream text"},
        },
    }
    customer_props = {
        "kvk": {"type": "string", "pattern": "^[0-9]{8}$"},
        "name": {"type": "string"},
        "environment": {"type": "string", "enum": [e.value for e in Environment]},
        "tenant_id": {"type": "string", "format": "uuid", "nullable": True},
        "account_manager": {"type": "string", "nullable": True},
        "state": {"type": "string", "enum": [s.value for s in State]},
        "state_since": _TIME,
        "state_reason": {"type": "string", "nullable": True},
        "granted_scopes": _SCOPES,
        "missing_scopes": _SCOPES,
        "rollout_missing_scopes": {
            **_SCOPES,
            "description": "scopes being rolled out (BRINCR_ROLLOUT_SCOPES) that the customer "
            "has not switched ON yet: tracked, not alerted; empty when no rollout runs",
        },
        "last_checked_at": _NULLABLE_TIME,
        "snoozed_until": _NULLABLE_TIME,
        "open_incident": _nullable("Incident"),
    }
    customer = {"type": "object", "required": list(customer_props), "properties": customer_props}
    detail = {
        "allOf": [
            {"$ref": "#/components/schemas/Customer"},
            {
                "type": "object",
                "required": ["last_check"],
                "properties": {"last_check": _nullable("Check")},
            },
        ]
    }
    page = {
        "type": "object",
        "required": ["customers", "total", "offset", "limit", "next_offset"],
        "properties": {
            "customers": {"type": "array", "items": {"$ref": "#/components/schemas/Customer"}},
            "total": {"type": "integer", "description": "customers matching the filters"},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "next_offset": {"type": "integer", "nullable": True,
                            "description": "offset of the next page; null on the last"},
        },
    }  # fmt: skip
    error = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
    return {"Incident": incident, "Check": check, "Customer": customer,
            "CustomerDetail": detail, "CustomerPage": page, "Error": error}  # fmt: skip


def _answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def _paths() -> dict[str, Any]:
    unauthorized = _answer("no or a wrong bearer token", _ERROR)
    listing = {
        "summary": "Customers and their stored connection state, by KvK number",
        "operationId": "listCustomers",
        "parameters": [
            _query("state", "only these states (repeat or comma-separate)", {"type": "string"}),
            _query("environment", "production or sandbox", {"type": "string"}),
            _query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 500,
                                          "default": 100}),
            _query("offset", "customers to skip", {"type": "integer", "minimum": 0,
                                                   "default": 0}),
        ],
        "responses": {
            "200": _answer("a page", {"$ref": "#/components/schemas/CustomerPage"}),
            "400": _answer("a bad filter or page", _ERROR),
            "401": unauthorized,
        },
    }  # fmt: skip
    one = {
        "summary": "One customer: state, since, scopes, last check and open incident",
        "operationId": "getCustomer",
        "parameters": [{"name": "kvk", "in": "path", "required": True,
                        "description": "KvK number (8 digits)", "schema": {"type": "string"}}],
        "responses": {
            "200": _answer("the customer", {"$ref": "#/components/schemas/CustomerDetail"}),
            "401": unauthorized,
            "404": _answer("no customer with this KvK number", _ERROR),
        },
    }  # fmt: skip
    document = {
        "summary": "This document",
        "operationId": "getOpenApi",
        "security": [],
        "responses": {"200": {"description": "OpenAPI 3 document",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    }  # fmt: skip
    return {
        "/customers": {"get": listing},
        "/customers/{kvk}": {"get": one},
        "/openapi.json": {"get": document},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "brincr-bot read-only API",
            "version": "1",
            "description": "Stored connection state of Brincr customers. Reading never "
            "triggers a check or a request to Visma or Brincr.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
    }
