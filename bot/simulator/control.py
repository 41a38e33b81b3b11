"""The simulator's control API over HTTP (JSON), for the CLI and other processes.

::

    GET    /_control/state                       apps (no secrets), tenants, faults, options, counters
    GET    /_control/counters
    GET    /_control/timeline                    requests per 100 ms slot of Unix time
    POST   /_control/apps/{env}                  {"client_id"?, "client_secret"?, "scopes"?, "expires_in"?}
    POST   /_control/tenants                     {"tenant_id", "environment", "scopes"}  (approve)
    POST   /_control/tenants/{tenant_id}/revoke  {"scopes"}
    DELETE /_control/tenants/{tenant_id}         (the app is removed from the tenant)
    POST   /_control/faults                      {"environment", "service", "mode",
                                                  "latency"?, "retry_after"?, "tenant_id"?, "status"?,
                                                  "body"?, "headers"?, "size"?}
                                                 (modes: see bot.simulator.state.FAULT_MODES)
    POST   /_control/options                     {"name_scope_in_error"?, "partial_scopes"?,
                                                  "invalid_client_status"?, "unknown_tenant_error"?}
    POST   /_control/reset

Changes answer 200 with the new state. A bad body answers 400 ``{"error": "<what is wrong>"}``,
an unknown tenant 404.
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.simulator.state import SimulatorError, UnknownTenantError

if TYPE_CHECKING:
    from bot.simulator.server import Simulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def control_routes(sim: Simulator) -> list[web.RouteDef]:
    control = _Control(sim)
    return [
        web.get("/_control/state", _guarded(control.state)),
        web.get("/_control/counters", _guarded(control.counters)),
        web.get("/_control/timeline", _guarded(control.timeline)),
        web.post("/_control/apps/{env}", _guarded(control.set_app)),
        web.post("/_control/tenants", _guarded(control.approve)),
        web.post("/_control/tenants/{tenant_id}/revoke", _guarded(control.revoke)),
        web.delete("/_control/tenants/{tenant_id}", _guarded(control.remove)),
        web.post("/_control/faults", _guarded(control.fault)),
        web.post("/_control/options", _guarded(control.options)),
        web.post("/_control/reset", _guarded(control.reset)),
    ]


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except UnknownTenantError as error:
            return web.json_response({"error": str(error)}, status=404)
        except SimulatorError as error:
            return web.json_response({"error": str(error)}, status=400)

    return guarded


class _Control:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def _state(self) -> web.Response:
        return web.json_response(self.sim.state())

    async def state(self, request: web.Request) -> web.StreamResponse:
        return self._state()

    async def counters(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.sim.counters.as_dict())

    async def timeline(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.sim.counters.timeline())

    async def set_app(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"client_id", "client_secret", "scopes", "expires_in"})
        self.sim.set_app(
            request.match_info["env"],
            client_id=_get(body, "client_id", str),
            client_secret=_get(body, "client_secret", str),
            scopes=_get(body, "scopes", list),
            expires_in=_get(body, "expires_in", int),
        )
        return self._state()

    async def approve(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"tenant_id", "environment", "scopes"})
        self.sim.approve(
            _need(body, "tenant_id", str),
            _need(body, "environment", str),
            _need(body, "scopes", list),
        )
        return self._state()

    async def revoke(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request, {"scopes"})
        self.sim.revoke(request.match_info["tenant_id"], _need(body, "scopes", list))
        return self._state()

    async def remove(self, request: web.Request) -> web.StreamResponse:
        self.sim.remove(request.match_info["tenant_id"])
        return self._state()

    async def fault(self, request: web.Request) -> web.StreamResponse:
        body = await _body(
            request,
            {"environment", "service", "mode", "latency", "retry_after", "tenant_id", "status",
             "body", "headers", "size"},
        )  # fmt: skip
        if "mode" not in body:
            raise SimulatorError("mode is required (null clears the fault)")
        self.sim.fault(
            _need(body, "environment", str),
            _need(body, "service", str),
            _get(body, "mode", str),
            latency=_get(body, "latency", float),
            retry_after=_get(body, "retry_after", int),
            tenant_id=_get(body, "tenant_id", str),
            status=_get(body, "status", int),
            body=body.get("body"),
            headers=_get(body, "headers", dict),
            size=_get(body, "size", int),
        )
        return self._state()

    async def options(self, request: web.Request) -> web.StreamResponse:
        names = {
            "name_scope_in_error",
            "partial_scopes",
            "invalid_client_status",
            "unknown_tenant_error",
        }
        body = await _body(request, names)
        self.sim.set_options(
            name_scope_in_error=_get(body, "name_scope_in_error", bool),
            partial_scopes=_get(body, "partial_scopes", str),
            invalid_client_status=_get(body, "invalid_client_status", int),
            unknown_tenant_error=_get(body, "unknown_tenant_error", str),
        )
        return self._state()

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.sim.reset()
        return self._state()


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise SimulatorError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise SimulatorError("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise SimulatorError(f"unknown field(s): {', '.join(unknown)}")
    return body


_KIND_NAMES = {
    str: "a string", list: "a list", int: "a whole number", float: "a number", dict: "an object"
}  # fmt: skip


def _get(body: dict[str, Any], name: str, kind: type) -> Any:
    """``body[name]`` if present and of ``kind`` (None if absent or null)."""
    value = body.get(name)
    if value is None:
        return None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise SimulatorError(f"{name} must be {_KIND_NAMES.get(kind, 'true or false')}")
    return value


def _need(body: dict[str, Any], name: str, kind: type) -> Any:
    value = _get(body, name, kind)
    if value is None:
        raise SimulatorError(f"{name} is required")
    return value
