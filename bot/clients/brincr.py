"""The Brincr API health probe: ``GET {API_URL}{BRINCR_PROBE_PATH}`` with a fresh token."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx

from bot.clients.upstream_http import UpstreamHttp
from bot.clients.visma import MAX_ERROR_TEXT, retry_after_seconds
from bot.core.metrics import record_upstream
from bot.domain import State
from bot.domain.upstream import clean_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeResult:
    state: State  # HEALTHY, or what this answer means for the customer
    status: int | None
    reason: str | None = None  # a word for the failure: unauthorized, forbidden, timeout, …
    text: str | None = None  # the upstream answer, verbatim (truncated)
    retry_after: float | None = None
    elapsed_ms: int = 0


def _meaning(status: int) -> tuple[State, str | None]:
    if 200 <= status < 300:
        return State.HEALTHY, None
    if status == 401:  # with a token we just got: the tenant refuses us (Brincr docs)
        return State.REVOKED, "unauthorized"
    if status == 403:  # required scopes missing from the token
        return State.SCOPES_MISSING, "forbidden"
    if status == 429:
        return State.UNKNOWN, "rate_limited"
    if status >= 500:
        return State.UNKNOWN, "server_error"
    return State.FAILING, f"http_{status}"


async def probe(http: UpstreamHttp, api_url: str, path: str, token: str) -> ProbeResult:
    headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    try:
        response = await http.get(api_url + path, headers=headers)
    except httpx.TimeoutException:
        record_upstream("brincr", None, error="timeout")
        return ProbeResult(
            State.UNKNOWN,
            None,
            "timeout",
            "no answer in time",
            elapsed_ms=int((time.perf_counter() - started) * 1000),
        )
    except httpx.TransportError as error:
        record_upstream("brincr", None, error="network")
        return ProbeResult(
            State.UNKNOWN,
            None,
            "network",
            type(error).__name__,
            elapsed_ms=int((time.perf_counter() - started) * 1000),
        )
    elapsed = int((time.perf_counter() - started) * 1000)
    record_upstream("brincr", response.status_code)
    state, reason = _meaning(response.status_code)
    log.debug("probe %s -> %s", path, response.status_code)
    return ProbeResult(
        state,
        response.status_code,
        reason,
        None if reason is None else clean_text(response.text, MAX_ERROR_TEXT),
        retry_after_seconds(response),
        elapsed,
    )
