"""The PagerDuty Events API v2 client: one POST per event (docs/domain.md, PagerDuty), explicit
timeouts, an injectable transport. What to retry is the caller's choice (:class:`Answer` says what
PagerDuty made of the event); ``bot.alerts.pager`` writes and sends the events.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from bot.core.clock import utcnow
from bot.core.metrics import record_upstream
from bot.domain.retrying import header_retry_after

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class Answer:
    """What PagerDuty made of one event."""

    status: int | None  # None: no answer (network error, timeout)
    error: str  # safe to store and log: a status and PagerDuty's own message
    retry_after: float | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def rate_limited(self) -> bool:
        return self.status == 429

    @property
    def permanent(self) -> bool:
        """Retrying cannot help: a 400 (invalid event) or another 4xx."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


class EventsClient:
    """One POST per event to the Events API, with explicit timeouts and an injectable
    transport (tests point it at a local stand-in)."""

    def __init__(
        self,
        url: str,
        routing_key: SecretStr,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.url = url
        self._routing_key = routing_key
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, action: str, key: str, body: dict[str, Any]) -> Answer:
        event = {
            **body,
            "routing_key": self._routing_key.get_secret_value(),
            "event_action": action,
            "dedup_key": key,
        }
        try:
            response = await self._http.post(self.url, json=event)
        except httpx.HTTPError as exc:
            record_upstream("pagerduty", None, error=type(exc).__name__)
            return Answer(None, type(exc).__name__)
        record_upstream("pagerduty", response.status_code)
        if response.status_code == 202:
            return Answer(202, "")
        wait = header_retry_after(response.headers, utcnow())
        return Answer(response.status_code, _error_text(response), wait)


def _error_text(response: httpx.Response) -> str:
    detail = ""
    with contextlib.suppress(ValueError):
        data = response.json()
        if isinstance(data, dict):
            errors = data.get("errors") or []
            detail = "; ".join(str(e) for e in errors) or str(data.get("message") or "")
    return f"HTTP {response.status_code} {detail}".strip()[:500]
