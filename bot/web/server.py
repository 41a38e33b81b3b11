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

from bot.composition import Bot
from bot.core.logs import correlation_id
from bot.web.metrics import render as render_metrics
from bot.web.webhook import PATH as WEBHOOK_PATH
from bot.web.webhook import webhook_handler
from storage.db import Database, one_line

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Probe = Callable[[], Awaitable[tuple[bool, str]]]
READINESS_TIMEOUT = 5.0


def build_web_app(bot: Bot, bolt: AsyncApp | None) -> web.Application:
    """Every route of ``serve``; ``/slack/events`` only when ``bolt`` is given (HTTP mode)."""
    app = web.Application(client_max_size=1024 * 1024, middlewares=[_request_id])
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(bot))
    app.router.add_get("/metrics", _metrics(bot.db))
    app.router.add_post(WEBHOOK_PATH, webhook_handler(bot.settings, bot.tenant_events))
    if bolt is not None:
        app.router.add_post("/slack/events", _slack_events(bolt))
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


def _readyz(bot: Bot) -> Handler:
    probes: dict[str, Probe] = {
        "database": _database_probe(bot.db),
        "scheduler": bot.scheduler.readiness,
    }  # only what this replica needs to serve: Slack delivery trouble is in /metrics

    async def readyz(_request: web.Request) -> web.Response:
        results = await asyncio.gather(*(_bounded(probe()) for probe in probes.values()))
        pairs = zip(probes, results, strict=True)
        detail = {name: {"ok": ok, "detail": text} for name, (ok, text) in pairs}
        ready = all(ok for ok, _ in results)
        return web.json_response({"ok": ready, "checks": detail}, status=200 if ready else 503)

    return readyz


def _database_probe(db: Database) -> Probe:
    async def probe() -> tuple[bool, str]:
        problem = await db.ping()
        return problem is None, problem or "database answers"

    return probe


_CUT: set[asyncio.Future[tuple[bool, str]]] = set()  # probes cut at the timeout, unwinding


def _forget(task: asyncio.Future[tuple[bool, str]]) -> None:
    _CUT.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: how it ended no longer matters


async def _bounded(probe: Awaitable[tuple[bool, str]]) -> tuple[bool, str]:
    """The probe's answer within READINESS_TIMEOUT. A late probe is cancelled and not
    waited for (asyncio.wait_for would: psycopg unwinds a query on a stalled server in
    5 + 5 s); a probe that fails is a 503 with detail, never a 500."""
    task = asyncio.ensure_future(probe)
    done, _ = await asyncio.wait({task}, timeout=READINESS_TIMEOUT)
    if not done:
        task.cancel()
        _CUT.add(task)
        task.add_done_callback(_forget)
        return False, f"no answer within {READINESS_TIMEOUT:.0f}s"
    if (error := task.exception()) is not None:
        return False, one_line(error)
    return task.result()


def _metrics(db: Database) -> Handler:
    async def serve_metrics(_request: web.Request) -> web.Response:
        body, content_type = await render_metrics(db)
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
