"""A local stand-in for the PagerDuty Events API v2 (``POST /v2/enqueue``), for the demo and
the tests: a real aiohttp server on 127.0.0.1 that validates events as PagerDuty documents
them, answers 202 with the ``dedup_key``, 400 for an invalid event, and 429 or 5xx on demand.
Accepted events are kept in :attr:`PagerDutyStandIn.events` and passed to ``on_event``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiohttp import web

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: int | None


def problems(event: Any) -> list[str]:
    """Why PagerDuty would refuse ``event`` (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["event must be a JSON object"]
    found = []
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        found.append("'routing_key' must be a 32-character integration key")
    action = event.get("event_action")
    if action not in ACTIONS:
        found.append("'event_action' must be trigger, acknowledge or resolve")
    key = event.get("dedup_key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 255):
        found.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not key:
        found.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*found, "'payload' is missing"]
        summary = payload.get("summary")
        if not isinstance(summary, str) or not 0 < len(summary) <= 1024:
            found.append("'payload.summary' must be 1 to 1024 characters")
        if not payload.get("source"):
            found.append("'payload.source' is missing")
        if payload.get("severity") not in SEVERITIES:
            found.append("'payload.severity' must be critical, error, warning or info")
    return found


class PagerDutyStandIn:
    def __init__(self, on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.url = ""  # the events endpoint, for PAGERDUTY_EVENTS_URL
        self.events: list[dict[str, Any]] = []  # accepted, in order
        self.requests = 0
        self._faults: list[_Fault] = []
        self._on_event = on_event
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        await self.start_on(0)

    async def start_on(self, port: int) -> None:
        """Listen on ``port`` of 127.0.0.1 (0: any free port)."""
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/v2/enqueue"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.stop()

    def fail(self, status: int = 429, *, times: int = 1, retry_after: int | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (429: too many events)."""
        self._faults.append(_Fault(status, times, retry_after))

    def actions(self, key: str | None = None) -> list[str]:
        """The accepted events' actions, for one ``dedup_key`` or all."""
        return [e["event_action"] for e in self.events if key in (None, e.get("dedup_key"))]

    async def _enqueue(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self._faults:
            fault = self._faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._faults.pop(0)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
            body: dict[str, Any] = {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly.",
            }
            return web.json_response(body, status=fault.status, headers=headers)
        try:
            event = json.loads(await request.text())
        except ValueError:
            event = None
        errors = problems(event)
        if errors:
            body = {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
            return web.json_response(body, status=400)
        assert isinstance(event, dict)
        event.setdefault("dedup_key", uuid.uuid4().hex)
        self.events.append(event)
        if self._on_event is not None:
            self._on_event(event)
        body = {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}
        return web.json_response(body, status=202)
