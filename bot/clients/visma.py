"""Visma Connect client-credentials tokens, one per customer tenant (docs/domain.md, Visma
Connect tokens).

One long-lived :class:`~bot.clients.upstream_http.UpstreamHttp` (httpx requests sent straight
to the aiohttp transport, one connection pool) serves every tenant; authlib builds the RFC 6749
token request and the client_secret_post authentication and reads the token's expiry.
Failures are classified, never raised: a check must go on for other customers. Tokens and
secrets are never logged.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
from authlib.common.encoding import urlsafe_b64decode
from authlib.oauth2.auth import encode_client_secret_post
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from bot.clients.upstream_http import UpstreamHttp
from bot.core.clock import utcnow
from bot.core.metrics import record_upstream
from bot.domain import upstream
from bot.domain.outcomes import TokenOutcome
from bot.domain.retrying import header_retry_after
from bot.settings import EnvironmentConfig

log = logging.getLogger(__name__)
MAX_ERROR_TEXT = upstream.MAX_ERROR_TEXT
MAX_SCOPE_NAME = 200
MAX_NAMED_SCOPES = 50  # an invalid_scope error's `scope` member, as far as it is read
TENANT_ERRORS = {"invalid_tenant", "invalid_grant", "unauthorized_client"}
TRANSIENT_ERRORS = {"server_error", "temporarily_unavailable"}


@dataclass(frozen=True)
class TokenResult:
    outcome: TokenOutcome
    access_token: str | None = None
    granted_scopes: tuple[str, ...] = ()
    expires_in: int | None = None
    status: int | None = None
    error_code: str | None = None  # upstream `error`, verbatim, or our word (timeout, network)
    error_text: str | None = None  # upstream `error_description`, verbatim (truncated)
    error_scopes: tuple[str, ...] = ()  # the `scope` member of an invalid_scope error
    retry_after: float | None = None
    elapsed_ms: int = 0

    def __repr__(self) -> str:  # never show the token
        return (
            f"TokenResult(outcome={self.outcome!s}, status={self.status}, error={self.error_code})"
        )


def _split(value: Any) -> tuple[str, ...]:
    """Scope names from a space-separated string or a list, each made safe to store."""
    names = value if isinstance(value, list | tuple) else str(value or "").split()
    return tuple(n for v in names if (n := upstream.clean_text(v, MAX_SCOPE_NAME)))


def jwt_scopes(token: str) -> tuple[str, ...]:
    """The ``scope`` claim of a JWT (array or space-separated string), unverified: the token
    came straight from the token endpoint over TLS, and we only read what it grants."""
    try:
        payload = json.loads(urlsafe_b64decode(token.split(".")[1].encode()))
    except (IndexError, ValueError):
        return ()
    return _split(payload.get("scope")) if isinstance(payload, dict) else ()


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP-date), bounded; None if unreadable."""
    return header_retry_after(response.headers, utcnow())


class TokenClient:
    """Requests a fresh token per call (revocation is only visible in a new token)."""

    def __init__(self, http: UpstreamHttp) -> None:
        self._http = http

    async def fetch(
        self, env: EnvironmentConfig, tenant_id: str, scopes: tuple[str, ...]
    ) -> TokenResult:
        client = SimpleNamespace(
            client_id=env.client_id, client_secret=env.client_secret.get_secret_value()
        )
        body = prepare_token_request(
            "client_credentials", scope=" ".join(scopes), tenant_id=tenant_id
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        _, headers, body = encode_client_secret_post(client, "POST", env.token_url, headers, body)
        started = time.perf_counter()
        try:
            response = await self._http.post(env.token_url, content=body, headers=headers)
        except httpx.TimeoutException:
            return self._network(env, tenant_id, "timeout", "no answer in time", started)
        except httpx.TransportError as error:
            return self._network(env, tenant_id, "network", type(error).__name__, started)
        elapsed = int((time.perf_counter() - started) * 1000)
        record_upstream("visma", response.status_code)
        result = classify_token_response(response, scopes, elapsed)
        log.debug(
            "token %s tenant=%s -> %s %s",
            env.name,
            tenant_id,
            response.status_code,
            result.error_code or "ok",
        )
        return result

    @staticmethod
    def _network(
        env: EnvironmentConfig, tenant_id: str, code: str, text: str, started: float
    ) -> TokenResult:
        record_upstream("visma", None, error=code)
        log.info("token %s tenant=%s: %s", env.name, tenant_id, code)
        elapsed = int((time.perf_counter() - started) * 1000)
        return TokenResult(
            TokenOutcome.TRANSIENT, error_code=code, error_text=text, elapsed_ms=elapsed
        )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def classify_token_response(
    response: httpx.Response, requested: tuple[str, ...], elapsed_ms: int
) -> TokenResult:
    """Success, or which kind of failure (docs/domain.md, Visma Connect token errors),
    keeping the upstream text verbatim."""
    status, data = response.status_code, _json(response)
    if status == 200 and isinstance(data.get("access_token"), str) and data["access_token"]:
        access_token = data["access_token"]
        granted = _split(data.get("scope")) or jwt_scopes(access_token)
        return TokenResult(
            TokenOutcome.OK,
            access_token=access_token,
            granted_scopes=granted or requested,
            status=status,
            expires_in=upstream.expires_in(data.get("expires_in")),
            elapsed_ms=elapsed_ms,
        )
    code = upstream.error_code(data.get("error")) or f"http_{status}"
    text = upstream.clean_text(data.get("error_description") or response.text, MAX_ERROR_TEXT)
    common: dict[str, Any] = dict(
        status=status, error_code=code, error_text=text, elapsed_ms=elapsed_ms
    )
    if status == 429:
        return TokenResult(
            TokenOutcome.RATE_LIMITED, retry_after=retry_after_seconds(response), **common
        )
    if status >= 500 or code in TRANSIENT_ERRORS:
        return TokenResult(
            TokenOutcome.TRANSIENT, retry_after=retry_after_seconds(response), **common
        )
    if code == "invalid_client":
        return TokenResult(TokenOutcome.APP_CREDENTIALS, **common)
    if code == "invalid_scope":
        scopes = _split(data.get("scope"))[:MAX_NAMED_SCOPES]
        return TokenResult(TokenOutcome.SCOPES, error_scopes=scopes, **common)
    if code in TENANT_ERRORS:
        return TokenResult(TokenOutcome.TENANT_ACCESS, **common)
    return TokenResult(TokenOutcome.OTHER, **common)
