"""What one health check found: the values that flow from the checker to storage, alerting,
the renderers and ``check --json``. Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain import State


class TokenOutcome(StrEnum):
    """How the token request ended (docs/domain.md, Visma Connect token errors)."""

    OK = "ok"
    APP_CREDENTIALS = "app_credentials"  # invalid_client: the vendor's app, one app-wide problem
    TENANT_ACCESS = "tenant_access"  # invalid_tenant / invalid_grant / unauthorized_client
    SCOPES = "scopes"  # invalid_scope, or a token issued without some required scopes
    TRANSIENT = "transient"  # 5xx, server_error, temporarily_unavailable, timeout, network
    RATE_LIMITED = "rate_limited"  # 429
    NOT_CONFIGURED = "not_configured"  # the environment has no client ID: not available
    OTHER = "other"  # any other error code: kept verbatim


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one check of one customer (one fresh token request + one probe)."""

    customer_id: int
    checked_at: datetime
    state: str  # bot.domain.State of this check alone, before thresholds (FAILING = failed)
    token_outcome: TokenOutcome
    required_scopes: tuple[str, ...]
    granted_scopes: tuple[str, ...] = ()
    missing_scopes: tuple[str, ...] = ()
    probe_status: int | None = None
    token_ms: int | None = None
    probe_ms: int | None = None
    error_code: str | None = None  # upstream `error` member, or our reason word (e.g. timeout)
    error_text: str | None = None  # upstream error text, verbatim (never a secret)
    retry_after: float | None = None  # seconds, when upstream asked us to back off
    extra_token_requests: int = 0  # requests spent narrowing down missing scopes
    rollout_scopes: tuple[str, ...] = ()  # the scopes being rolled out at this check (#17)
    rollout_missing: tuple[str, ...] | None = None  # of those, not switched ON; None: not asked
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.state == State.HEALTHY

    @property
    def transient(self) -> bool:
        """Visma/Brincr trouble that is nobody's fault: never reported as the customer's."""
        return self.state == State.UNKNOWN
