"""The simulator's in-memory world: apps, tenants, faults, options and request counters.

Nothing here does I/O. :class:`World` also decides token requests
(:meth:`World.authorize_token`), so the rules of Visma Connect as we understand them
(docs/domain.md, Visma Connect tokens) live in one place, apart from HTTP.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ENVIRONMENTS = ("production", "sandbox")
SERVICES = ("token", "api")
FAULT_MODES = (
    "down", "server_error", "timeout", "rate_limit", "status",
    "answer",  # `status` (default 200) with the JSON `body` and `headers` given, verbatim
    "trickle",  # `status` (default 200), a body of `size` bytes sent one byte per TRICKLE_SECONDS
    "huge_body",  # `status` (default 500), an HTML body of `size` bytes (default 64 MiB)
)  # fmt: skip
TRICKLE_SECONDS = 0.5
HUGE_BODY = 64 * 1024 * 1024
MAX_FAULT_SIZE = 1024 * 1024 * 1024
PARTIAL_SCOPES = ("reject", "downscope")
DEFAULT_SCOPES = (
    "brincr:category",
    "brincr:country",
    "brincr:customer",
    "brincr:order",
    "brincr:product",
    "brincr:salesOrder",
    "brincr:status",
)
DEFAULT_EXPIRES_IN = 3600


class SimulatorError(ValueError):
    """A control call named something invalid; the message says what."""


class UnknownTenantError(SimulatorError):
    """A control call named a tenant the simulator has never seen."""


class TokenError(Exception):
    """A token request the simulated Visma Connect refuses (RFC 6749 §5.2 error body)."""

    def __init__(self, status: int, error: str, description: str, scope: str | None = None):
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope

    def body(self) -> dict[str, str]:
        body = {"error": self.error, "error_description": self.description}
        if self.scope is not None:
            body["scope"] = self.scope
        return body


@dataclass
class App:
    """One Visma Developer Portal app (one per environment)."""

    client_id: str
    client_secret: str
    scopes: list[str]
    expires_in: int = DEFAULT_EXPIRES_IN


@dataclass
class Tenant:
    """A customer's approval of the app: the scopes switched on, in one environment."""

    environment: str
    scopes: list[str]
    removed: bool = False


@dataclass
class Fault:
    """What one env+service (optionally one tenant) does instead of answering normally."""

    mode: str | None = None
    latency: float = 0.0
    retry_after: int | None = None
    status: int | None = None
    body: Any = None  # mode "answer": the JSON body
    headers: dict[str, str] | None = None  # mode "answer": extra headers, e.g. Retry-After
    size: int | None = None  # modes "trickle" and "huge_body": body length in bytes


@dataclass
class Options:
    name_scope_in_error: bool = True
    partial_scopes: str = "reject"
    invalid_client_status: int = 400
    unknown_tenant_error: str = "invalid_tenant"


@dataclass(frozen=True)
class Grant:
    """A token request that succeeds: who gets which scopes for how long."""

    environment: str
    client_id: str
    tenant_id: str
    scopes: tuple[str, ...]
    expires_in: int


TIMELINE_SLOTS_PER_SECOND = 10  # the timeline counts requests per 100 ms of wall-clock time


@dataclass
class Counters:
    """Requests that reached each endpoint, failed ones included; and when (the timeline:
    per service, per 100 ms slot of Unix time), so a benchmark can see how even the load is."""

    _counts: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    _slots: Counter[tuple[str, int]] = field(default_factory=Counter)

    def record(self, service: str, env: str, tenant_id: str | None) -> None:
        self._counts[(service, env, tenant_id)] += 1
        self._slots[(service, int(time.time() * TIMELINE_SLOTS_PER_SECOND))] += 1

    def timeline(self) -> dict[str, Any]:
        """``{"slots_per_second": 10, "token_requests": {slot: n}, "api_requests": …}``, a
        slot being ``int(unix_time × slots_per_second)``; slots without requests are absent."""
        result: dict[str, Any] = {"slots_per_second": TIMELINE_SLOTS_PER_SECOND}
        for service in SERVICES:
            result[f"{service}_requests"] = {
                str(slot): n for (s, slot), n in sorted(self._slots.items()) if s == service
            }
        return result

    def _sum(self, service: str, env: str | None, tenant_id: str | None) -> int:
        return sum(
            n
            for (s, e, t), n in self._counts.items()
            if s == service and env in (None, e) and tenant_id in (None, t)
        )

    def token_requests(self, env: str | None = None, tenant_id: str | None = None) -> int:
        return self._sum("token", env, tenant_id)

    def api_requests(self, env: str | None = None, tenant_id: str | None = None) -> int:
        return self._sum("api", env, tenant_id)

    def reset(self) -> None:
        self._counts.clear()
        self._slots.clear()

    def as_dict(self) -> dict[str, Any]:
        """``{"token_requests": {"total", "by_environment", "by_tenant"}, "api_requests": …}``."""
        result: dict[str, Any] = {}
        for service in SERVICES:
            by_env: Counter[str] = Counter()
            by_tenant: Counter[str] = Counter()
            for (s, env, tenant), n in self._counts.items():
                if s == service:
                    by_env[env] += n
                    if tenant is not None:
                        by_tenant[tenant] += n
            result[f"{service}_requests"] = {
                "total": sum(by_env.values()),
                "by_environment": dict(by_env),
                "by_tenant": dict(by_tenant),
            }
        return result


def default_apps() -> dict[str, App]:
    return {
        env: App(f"sim-{env}-client", f"sim-{env}-secret", list(DEFAULT_SCOPES))
        for env in ENVIRONMENTS
    }


def check_env(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise SimulatorError(f"environment must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    return env


def check_scopes(scopes: Iterable[str], what: str = "scopes") -> list[str]:
    if isinstance(scopes, str):
        raise SimulatorError(f"{what} must be a list of scope names, not a string")
    result: list[str] = []
    for scope in scopes:
        if not isinstance(scope, str) or not scope or any(c.isspace() for c in scope):
            raise SimulatorError(f"{what}: {scope!r} is not a scope name")
        if scope not in result:
            result.append(scope)
    return result


def split_scopes(text: str) -> list[str]:
    return list(dict.fromkeys(text.split()))
