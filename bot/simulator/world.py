"""The rules of the simulated Visma Connect: who may have a token with which scopes.

:class:`World` holds the mutable state (apps, tenants, faults, options) and checks every
argument of a control call, raising :class:`~bot.simulator.state.SimulatorError`.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.simulator.state import (
    FAULT_MODES,
    MAX_FAULT_SIZE,
    PARTIAL_SCOPES,
    SERVICES,
    App,
    Fault,
    Grant,
    Options,
    SimulatorError,
    Tenant,
    TokenError,
    UnknownTenantError,
    check_env,
    check_scopes,
    default_apps,
    split_scopes,
)

logger = logging.getLogger(__name__)

FaultKey = tuple[str, str, str | None]  # environment, service, tenant_id (None: every tenant)


class World:
    apps: dict[str, App]
    tenants: dict[str, Tenant]
    faults: dict[FaultKey, Fault]
    options: Options

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Default apps, no tenants, no faults, default options."""
        self.apps = default_apps()
        self.tenants = {}
        self.faults = {}
        self.options = Options()

    # --- control -------------------------------------------------------------------------

    def set_app(
        self,
        env: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: list[str] | None = None,
        expires_in: int | None = None,
    ) -> None:
        app = self.apps[check_env(env)]
        for name, value in (("client_id", client_id), ("client_secret", client_secret)):
            if value is not None and (not isinstance(value, str) or not value):
                raise SimulatorError(f"{name} must be a non-empty string")
        if expires_in is not None and (
            not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0
        ):
            raise SimulatorError("expires_in must be a positive whole number of seconds")
        new_scopes = check_scopes(scopes) if scopes is not None else None
        app.client_id = client_id or app.client_id
        app.client_secret = client_secret or app.client_secret
        app.scopes = app.scopes if new_scopes is None else new_scopes
        app.expires_in = expires_in or app.expires_in
        logger.info("simulator: %s app is now %s with scopes %s", env, app.client_id, app.scopes)

    def approve(self, tenant_id: str, env: str, scopes: list[str]) -> bool:
        """Record the approval; True if the tenant is new here (a webhook-worthy event)."""
        tenant_id = _check_tenant_id(tenant_id)
        granted = check_scopes(scopes)
        previous = self.tenants.get(tenant_id)
        added = previous is None or previous.removed or previous.environment != env
        self.tenants[tenant_id] = Tenant(check_env(env), granted)
        logger.info("simulator: tenant %s approved in %s with %s", tenant_id, env, granted)
        return added

    def revoke(self, tenant_id: str, scopes: list[str]) -> None:
        tenant = self._tenant(tenant_id)
        off = check_scopes(scopes)
        tenant.scopes = [s for s in tenant.scopes if s not in off]
        logger.info("simulator: tenant %s switched off %s", tenant_id, off)

    def remove(self, tenant_id: str) -> Tenant | None:
        """Mark the app removed from the tenant; returns the tenant unless it already was."""
        tenant = self._tenant(tenant_id)
        if tenant.removed:
            return None
        tenant.removed = True
        logger.info("simulator: app removed from tenant %s", tenant_id)
        return tenant

    def set_fault(
        self,
        env: str,
        service: str,
        mode: str | None,
        *,
        latency: float | None = None,
        retry_after: int | None = None,
        tenant_id: str | None = None,
        status: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        size: int | None = None,
    ) -> None:
        key: FaultKey = (check_env(env), _check_service(service), tenant_id)
        if tenant_id is not None:
            _check_tenant_id(tenant_id)
        _check_fault(mode, latency, retry_after, status)
        _check_answer(mode, status, headers, size)
        fault = self.faults.get(key, Fault())
        fault.mode = mode
        fault.retry_after = retry_after if mode else None
        fault.status = status if mode in ("status", "answer", "trickle", "huge_body") else None
        fault.body = body if mode == "answer" else None
        fault.headers = headers if mode == "answer" else None
        fault.size = size if mode in ("trickle", "huge_body") else None
        if latency is not None:
            fault.latency = float(latency)
        if fault.mode is None and fault.latency == 0:
            self.faults.pop(key, None)
        else:
            self.faults[key] = fault
        logger.info("simulator: %s %s fault %s (tenant %s)", env, service, fault, tenant_id)

    def set_options(
        self,
        *,
        name_scope_in_error: bool | None = None,
        partial_scopes: str | None = None,
        invalid_client_status: int | None = None,
        unknown_tenant_error: str | None = None,
    ) -> None:
        if name_scope_in_error is not None and not isinstance(name_scope_in_error, bool):
            raise SimulatorError("name_scope_in_error must be true or false")
        if partial_scopes is not None and partial_scopes not in PARTIAL_SCOPES:
            raise SimulatorError(f"partial_scopes must be one of {', '.join(PARTIAL_SCOPES)}")
        if invalid_client_status is not None and invalid_client_status not in (400, 401):
            raise SimulatorError("invalid_client_status must be 400 or 401")
        if unknown_tenant_error is not None and (
            not isinstance(unknown_tenant_error, str) or not unknown_tenant_error
        ):
            raise SimulatorError("unknown_tenant_error must be a non-empty error code")
        opts = self.options
        if name_scope_in_error is not None:
            opts.name_scope_in_error = name_scope_in_error
        opts.partial_scopes = partial_scopes or opts.partial_scopes
        opts.invalid_client_status = invalid_client_status or opts.invalid_client_status
        opts.unknown_tenant_error = unknown_tenant_error or opts.unknown_tenant_error

    # --- lookups -------------------------------------------------------------------------

    def fault_for(
        self, env: str, service: str, tenant_id: str | None
    ) -> tuple[Fault | None, float]:
        """The fault in force (a tenant's own wins) and the extra latency (both add up)."""
        common = self.faults.get((env, service, None))
        own = self.faults.get((env, service, tenant_id)) if tenant_id is not None else None
        latency = (common.latency if common else 0.0) + (own.latency if own else 0.0)
        if own is not None and own.mode is not None:
            return own, latency
        if common is not None and common.mode is not None:
            return common, latency
        return None, latency

    def tenant_active(self, tenant_id: str, env: str) -> bool:
        tenant = self.tenants.get(tenant_id)
        return tenant is not None and not tenant.removed and tenant.environment == env

    def snapshot(self) -> dict[str, Any]:
        """Everything but secrets, as JSON-ready data."""
        return {
            "apps": {
                env: {"client_id": a.client_id, "scopes": a.scopes, "expires_in": a.expires_in}
                for env, a in self.apps.items()
            },
            "tenants": {
                tid: {"environment": t.environment, "scopes": t.scopes, "removed": t.removed}
                for tid, t in self.tenants.items()
            },
            "faults": [
                {"environment": env, "service": service, "tenant_id": tenant, **vars(fault)}
                for (env, service, tenant), fault in self.faults.items()
            ],
            "options": vars(self.options).copy(),
        }

    def _tenant(self, tenant_id: str) -> Tenant:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            raise UnknownTenantError(f"unknown tenant {tenant_id!r}")
        return tenant

    # --- token requests ------------------------------------------------------------------

    def authorize_token(
        self,
        env: str,
        *,
        client_id: str | None,
        client_secret: str | None,
        grant_type: str | None,
        tenant_id: str | None,
        scope: str | None,
    ) -> Grant:
        """The grant for one token request, or :class:`TokenError` as Visma Connect would."""
        app = self.apps[env]
        if client_id != app.client_id or client_secret != app.client_secret:
            raise TokenError(self.options.invalid_client_status, "invalid_client", "invalid_client")
        if grant_type != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", f"grant type {grant_type!r}")
        if not tenant_id:
            raise TokenError(400, "invalid_request", "tenant_id is missing")
        requested = split_scopes(scope or "")
        unregistered = [s for s in requested if s not in app.scopes]
        if unregistered:
            raise self._scope_error(unregistered, "scope not allowed for this client")
        if not self.tenant_active(tenant_id, env):
            error = self.options.unknown_tenant_error
            raise TokenError(400, error, "the tenant has not approved this application")
        granted = [s for s in self.tenants[tenant_id].scopes if s in app.scopes]
        if not requested:
            return self._grant(env, app, tenant_id, granted)
        missing = [s for s in requested if s not in granted]
        if missing and self.options.partial_scopes == "reject":
            raise self._scope_error(missing, "scope not granted by the tenant")
        return self._grant(env, app, tenant_id, [s for s in requested if s in granted])

    def _grant(self, env: str, app: App, tenant_id: str, scopes: list[str]) -> Grant:
        if not scopes:
            raise TokenError(400, "invalid_scope", "no requested scope is granted by the tenant")
        return Grant(env, app.client_id, tenant_id, tuple(scopes), app.expires_in)

    def _scope_error(self, scopes: list[str], description: str) -> TokenError:
        named = " ".join(scopes) if self.options.name_scope_in_error else None
        return TokenError(400, "invalid_scope", description, scope=named)


def _check_tenant_id(tenant_id: object) -> str:
    if not isinstance(tenant_id, str) or not tenant_id.strip():
        raise SimulatorError("tenant_id must be a non-empty string")
    return tenant_id


def _check_service(service: str) -> str:
    if service not in SERVICES:
        raise SimulatorError(f"service must be one of {', '.join(SERVICES)}, not {service!r}")
    return service


def _check_answer(
    mode: str | None, status: int | None, headers: dict[str, str] | None, size: int | None
) -> None:
    """The fields of modes "answer", "trickle" and "huge_body"."""
    if (
        mode in ("answer", "trickle", "huge_body")
        and status is not None
        and (not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599)
    ):
        raise SimulatorError("status must be between 200 and 599")
    if headers is not None and (
        not isinstance(headers, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    ):
        raise SimulatorError("headers must map header names to strings")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= MAX_FAULT_SIZE
    ):
        raise SimulatorError(f"size must be a whole number of bytes, 1 to {MAX_FAULT_SIZE}")


def _check_fault(
    mode: str | None, latency: float | None, retry_after: int | None, status: int | None
) -> None:
    if mode is not None and mode not in FAULT_MODES:
        raise SimulatorError(f"mode must be null or one of {', '.join(FAULT_MODES)}")
    if latency is not None and (
        not isinstance(latency, int | float) or isinstance(latency, bool) or latency < 0
    ):
        raise SimulatorError("latency must be a number of seconds >= 0")
    if retry_after is not None and (
        not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0
    ):
        raise SimulatorError("retry_after must be a whole number of seconds >= 0")
    if mode == "status" and (
        not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599
    ):
        raise SimulatorError("mode 'status' needs a status between 200 and 599")
