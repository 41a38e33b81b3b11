"""The HTTP side of ``serve`` (aiohttp): Slack events in HTTP mode, the Visma webhook, and
the operator endpoints ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

from bot.composition import Bot
from bot.core.logs import correlation_id
from bot.web.api import add_api_routes
from bot.web.bodies import BodyBudget, BodyRefused
from bot.web.metrics import render as render_metrics
from bot.web.webhook import PATH as WEBHOOK_PATH
from bot.web.webhook import webhook_handler
from storage.db import Database, one_line

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Probe = Callable[[], Awaitable[tuple[bool, str]]]
MoreMetrics = Callable[[], Awaitable[str | None]]
READINESS_TIMEOUT = 5.0
# Slowloris: a client that never finishes its request is cut off. Headers (and idle
# keep-alive connections) get HEADER_TIMEOUT from the connection's start (aiohttp's
# keepalive_timeout closes a connection whose request never completed); the body and the
# answer get REQUEST_TIMEOUT (a 408 when reading the body ran out of time).
HEADER_TIMEOUT = 15.0
REQUEST_TIMEOUT = 30.0
# What aiohttp buffers per connection before it stops reading a body nobody reads yet
# (twice this): small, so a flood of connections that all send a body costs little.
READ_BUFFER = 16 * 1024


def build_web_app(
    bot: Bot,
    bolt: AsyncApp | None,
    *,
    scheduler: Probe | None = None,
    more_metrics: MoreMetrics | None = None,
    database_gauges: bool = True,
) -> web.Application:
    """Every route of ``serve``; ``/slack/events`` only when ``bolt`` is given (HTTP mode).
    A worker (``bot.role``) serves only ``/healthz``, ``/readyz`` and ``/metrics``.
    With a check engine (:class:`bot.runtime.CheckEngine`), ``scheduler`` is its readiness
    (``/readyz``) and ``more_metrics`` its metrics, added to this process's; the engine's own
    app leaves the database's gauges to its listener (``database_gauges``)."""
    role = bot.role
    app = web.Application(client_max_size=1024 * 1024, middlewares=[_request_id, _time_limit])
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(bot, scheduler or bot.scheduler.readiness))
    app.router.add_get("/metrics", _metrics(bot.db, more_metrics, database_gauges))
    if not role.answers:
        return app
    budget = BodyBudget()  # one for every route that reads a body before it is verified
    app.router.add_post(WEBHOOK_PATH, webhook_handler(bot.settings, bot.tenant_events, budget))
    if bolt is not None:
        secret = bot.settings.slack_signing_secret
        # Without a secret nothing verifies (anyone can compute an HMAC with an empty key).
        key = secret.get_secret_value() if secret else ""
        verifier = SignatureVerifier(key) if key else None
        app.router.add_post("/slack/events", _slack_events(bolt, verifier, budget))
    add_api_routes(app, bot.db, bot.settings)
    return app


@web.middleware
async def _request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = correlation_id.set(f"req-{uuid.uuid4().hex[:10]}")
    try:
        return await handler(request)
    finally:
        correlation_id.reset(token)


@web.middleware
async def _time_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            return await handler(request)
    except TimeoutError:
        log.warning("request cut off: %s %s not done in %.0f s",
                    request.method, request.path, REQUEST_TIMEOUT)  # fmt: skip
        response = web.json_response({"error": "request timeout"}, status=408)
        response.force_close()  # do not wait for the rest of a body that is not coming
        return response


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def _readyz(bot: Bot, scheduler: Probe) -> Handler:
    role = bot.role
    # Only what this replica needs to serve: Slack delivery trouble is in /metrics, and a
    # web replica runs no scheduler, so it is ready while its database answers.
    probes: dict[str, Probe] = {"database": _database_probe(bot.db)}
    if role.works:
        probes["scheduler"] = scheduler

    said: dict[str, str] = {}  # the last detail logged per check: a line per change

    async def readyz(_request: web.Request) -> web.Response:
        results = await asyncio.gather(*(_bounded(probe()) for probe in probes.values()))
        pairs = list(zip(probes, results, strict=True))
        for name, (ok, text) in pairs:
            if not ok and said.get(name) != text:
                log.warning("not ready: %s: %s", name, text)
            said[name] = "" if ok else text
        # public: which check fails, in a word; the detail (server names, ports) is logged
        checks = {name: {"ok": ok, "detail": "ok" if ok else "failing"} for name, (ok, _) in pairs}
        ready = all(ok for ok, _ in results)
        return web.json_response(
            {"ok": ready, "role": role.value, "purpose": role.purpose, "checks": checks},
            status=200 if ready else 503,
        )

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


def _metrics(db: Database, more: MoreMetrics | None, database_gauges: bool) -> Handler:
    async def serve_metrics(_request: web.Request) -> web.Response:
        body, content_type = await render_metrics(
            db, more=await more() if more is not None else None, database_gauges=database_gauges
        )
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    return serve_metrics


SLACK_MAX_AGE = 300  # seconds a signed Slack request stays valid (Slack's own rule)
SLACK_MAX_BODY = 1024 * 1024


def slack_refusal(
    verifier: SignatureVerifier | None, headers: Mapping[str, str], body: bytes, now: float
) -> tuple[int, str] | None:
    """Why a request to ``/slack/events`` is refused (status, reason), or None when it is
    signed, fresh and readable. Checked here, before Bolt sees it: Bolt logs the raw body of
    every request that fails its own check, and answers 500 to a timestamp that is not a
    number or a body that is not UTF-8."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "").strip()
    signature = headers.get("X-Slack-Signature", "").strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return 401, "timestamp missing or not a number"
    if abs(now - int(timestamp)) > SLACK_MAX_AGE:
        return 401, "timestamp more than five minutes off"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return 400, "body is not UTF-8"
    if verifier is None:
        return 401, "no SLACK_SIGNING_SECRET: nothing can be verified"
    if not signature or not verifier.is_valid(body, timestamp, signature):
        return 401, "signature missing or wrong"
    return None


def shape_refusal(parsed: object) -> str | None:
    """Why a signed body Bolt parsed cannot be a Slack request, or None. Slack never sends
    one; Bolt's listeners would fail on it with an AttributeError and a 500."""
    if not isinstance(parsed, dict):
        return "body is not a JSON object"
    event = parsed.get("event")
    if event is not None and not isinstance(event, dict):
        return "event is not a JSON object"
    return None


def _slack_events(
    bolt: AsyncApp, verifier: SignatureVerifier | None, budget: BodyBudget
) -> Handler:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await budget.read(request, SLACK_MAX_BODY)
        except BodyRefused as unread:
            log.warning("slack request refused: %s %s (%s bytes): %s",
                        request.method, request.path, unread.size, unread.reason)  # fmt: skip
            return unread.response()
        refused = slack_refusal(verifier, request.headers, body, time.time())
        if refused is not None:
            status, reason = refused
            log.warning("slack request refused: %s %s (%s bytes): %s",
                        request.method, request.path, len(body), reason)  # fmt: skip
            return web.json_response({"error": reason}, status=status)
        text = body.decode("utf-8")
        try:  # the adapter's to_bolt_request would read the body again
            bolt_request = AsyncBoltRequest(
                body=text, query=request.query_string, headers=dict(request.headers)
            )
            wrong = shape_refusal(bolt_request.body)
        except RecursionError:  # Bolt parses the JSON here: a signed payload nested too deep
            wrong = "payload nested too deeply"
        except json.JSONDecodeError:  # a JSON body, or a form's payload, that is not JSON
            wrong = "body is not valid JSON"
        except AttributeError:  # Bolt reads what it parsed with .get(): a JSON array or scalar
            if isinstance(parse_body(text, request.content_type), dict):
                raise  # not the body's shape: a fault of ours, a 500 with its traceback
            wrong = "body is not a JSON object"
        if wrong is not None:
            log.warning("slack request refused: %s %s (%s bytes): %s",
                        request.method, request.path, len(body), wrong)  # fmt: skip
            return web.json_response({"error": wrong}, status=400)
        response = await to_aiohttp_response(await bolt.async_dispatch(bolt_request))
        log.info("slack request answered %s in %.0f ms", response.status,
                 (time.perf_counter() - started) * 1000)  # fmt: skip
        return response

    return slack_events
