"""The HTTP side of ``serve`` (aiohttp): Slack events in HTTP mode, the Visma webhook, and
the operator endpoints ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot import metrics
from bot.api import add_api_routes
from bot.logs import correlation_id
from bot.services import Services

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READINESS_TIMEOUT = 5.0


def build_web_app(services: Services, bolt: AsyncApp | None) -> web.Application:
    """Routes: ``/slack/events`` only when ``bolt`` is given (HTTP mode); extra routes (the
    webhook) come from ``services.extras["routes"]``."""
    app = web.Application(client_max_size=1024 * 1024, middlewares=[_request_id])
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(services))
    app.router.add_get("/metrics", _metrics(services))
    if bolt is not None:
        app.router.add_post("/slack/events", _slack_events(bolt))
    for method, path, handler in services.extras.get("routes", []):
        app.router.add_route(method, path, handler)
    add_api_routes(app, services.db, services.settings)
    return app


@web.middleware
async def _request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = correlation_id.set(f"req-{uuid.uuid4().hex[:10]}")
    try:
        return await handler(request)
    finally:
        correlation_id.reset(token)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _readyz(services: Services) -> Handler:
    async def readyz(_request: web.Request) -> web.Response:
        checks = {"database": _database_probe(services), **services.readiness}
        results = await asyncio.gather(*(_bounded(probe()) for probe in checks.values()))
        pairs = zip(checks, results, strict=True)
        detail = {name: {"ok": ok, "detail": text} for name, (ok, text) in pairs}
        ready = all(ok for ok, _ in results)
        return web.json_response({"ok": ready, "checks": detail}, status=200 if ready else 503)

    return readyz


def _database_probe(services: Services) -> Callable[[], Awaitable[tuple[bool, str]]]:
    async def probe() -> tuple[bool, str]:
        ok = await services.db.ping()
        return ok, "database answers" if ok else "database does not answer"

    return probe


async def _bounded(probe: Awaitable[tuple[bool, str]]) -> tuple[bool, str]:
    try:
        return await asyncio.wait_for(probe, READINESS_TIMEOUT)
    except TimeoutError:
        return False, f"no answer within {READINESS_TIMEOUT:.0f}s"


def _metrics(services: Services) -> Handler:
    async def serve_metrics(_request: web.Request) -> web.Response:
        body, content_type = await metrics.render(services.db)
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return serve_metrics


def _slack_events(bolt: AsyncApp) -> Handler:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        response = await to_aiohttp_response(
            await bolt.async_dispatch(await to_bolt_request(request))
        )
        log.info("slack request answered %s in %.0f ms", response.status,
                 (time.perf_counter() - started) * 1000)  # fmt: skip
        return response

    return slack_events
