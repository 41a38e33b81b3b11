"""A whole bot under test: the real Runtime (Bolt app, services, HTTP listener) on
127.0.0.1, a fake Slack Web API, the Visma/Brincr stand-in and a real database.

Slack requests are sent as Slack sends them: form-encoded or JSON payloads, signed with the
signing secret, over HTTP to ``/slack/events``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.demo.fake_slack import FakeSlack, SlackCall
from bot.domain import Environment, State
from bot.domain.roles import Role
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-test-token-0000"
ADMIN = "U0ADMIN"
SUPPORT = "U0SUPPORT"
ALERTS = "C0ALERTS"
SUPPORT_CHANNEL = "C0SUPPORT"
SCOPES = ("brincr:country", "brincr:category", "brincr:order")


class ErrorWatch(logging.Handler):
    """Collects the ERROR records logged during one test. A test that ran the whole bot
    (:func:`start_bot`, the ``bot`` fixture) fails on any it did not expect: declare them
    with ``@pytest.mark.expected_errors("text", …)`` or ``watch.expect("text")``."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.expected: list[str] = []
        self.whole_system = False

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, *texts: str) -> None:
        self.expected.extend(texts)

    def unexpected(self) -> list[str]:
        lines = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in self.records]
        return [line for line in lines if not any(t in line for t in self.expected)]


# One TLS context for every harness's client (they only speak plain HTTP to 127.0.0.1):
# httpx would load the CA bundle again for each, about 30 ms a test.
_TLS = httpx.create_ssl_context()

WATCH: list[ErrorWatch] = []  # the current test's watch (set by tests/conftest.py)


def bot_settings(database_url: str, sim: Simulator, slack: FakeSlack, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url,
        "alert_channel": ALERTS,
        "bot_admins": ADMIN,
        "brincr_scopes": " ".join(SCOPES),
        "host": "127.0.0.1",
        "port": 0,
        # Alerts at once; tests of a real hold ask for one (tests/alerts/test_holds.py).
        "alert_group_wait": "0",
    }
    values.update({k.lower(): v for k, v in sim.settings_env().items()})
    values.update(overrides)
    return load_settings(**values)


class BotHarness:
    def __init__(self, runtime: Runtime, slack: FakeSlack, sim: Simulator) -> None:
        self.runtime = runtime
        self.slack = slack
        self.sim = sim
        self.http = httpx.AsyncClient(timeout=10, verify=_TLS)
        self.secret = SIGNING_SECRET

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.runtime.port}"

    async def close(self) -> None:
        await self.http.aclose()
        await self.runtime.stop()

    # --- sending ------------------------------------------------------------------------

    def signed_headers(self, body: str, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        signature = SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}

    async def post(self, body: str, content_type: str, **sign: Any) -> httpx.Response:
        headers = {"Content-Type": content_type, **self.signed_headers(body, **sign)}
        return await self.http.post(self.url + "/slack/events", content=body, headers=headers)

    def new_response_url(self) -> tuple[str, str]:
        key = uuid.uuid4().hex[:12]
        return key, self.slack.response_url_base + key

    async def command(
        self, text: str, *, user: str = SUPPORT, channel: str = SUPPORT_CHANNEL
    ) -> tuple[httpx.Response, str]:
        """Send ``/brincr <text>``; returns the HTTP answer and the response_url key."""
        key, response_url = self.new_response_url()
        form = {
            "token": "legacy", "team_id": "T0FAKE", "team_domain": "fake", "channel_id": channel,
            "channel_name": "support", "user_id": user, "user_name": user.lower(),
            "command": "/brincr", "text": text, "api_app_id": "A0FAKE",
            "response_url": response_url, "trigger_id": f"{uuid.uuid4().int % 10**12}.1.abc",
        }  # fmt: skip
        response = await self.post(urlencode(form), "application/x-www-form-urlencoded")
        return response, key

    async def action(
        self,
        action_id: str,
        value: str,
        *,
        user: str = SUPPORT,
        channel: str = SUPPORT_CHANNEL,
        ephemeral: bool = True,
        message_ts: str = "1700000000.000100",
        select: bool = False,
    ) -> tuple[httpx.Response, str]:
        """Press a button (or, with ``select``, choose ``value`` in a static select)."""
        key, response_url = self.new_response_url()
        payload = {
            "type": "block_actions",
            "team": {"id": "T0FAKE", "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "team_id": "T0FAKE"},
            "api_app_id": "A0FAKE",
            "token": "legacy",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                          "is_ephemeral": ephemeral},
            "trigger_id": f"{uuid.uuid4().int % 10**12}.1.abc",
            "channel": {"id": channel, "name": "support"},
            "message": {"ts": message_ts, "text": "x"},
            "response_url": response_url,
            "actions": [{"action_id": action_id, "block_id": "b", "value": value,
                         "type": "button", "action_ts": str(time.time())}],
        }  # fmt: skip
        if select:
            option = {"text": {"type": "plain_text", "text": value}, "value": value}
            payload["actions"] = [{"action_id": action_id, "block_id": "b",
                                   "type": "static_select", "selected_option": option,
                                   "action_ts": str(time.time())}]  # fmt: skip
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded"), key

    async def view_submission(self, view: dict[str, Any], *, user: str = SUPPORT) -> httpx.Response:
        """Submit a modal (``view`` with its ``callback_id`` and ``state``), signed."""
        payload = {
            "type": "view_submission",
            "team": {"id": "T0FAKE", "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "team_id": "T0FAKE"},
            "api_app_id": "A0FAKE",
            "token": "legacy",
            "trigger_id": f"{uuid.uuid4().int % 10**12}.1.abc",
            "view": view,
            "response_urls": [],
        }
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")

    async def event(self, event: dict[str, Any]) -> httpx.Response:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": "T0FAKE",
                "api_app_id": "A0FAKE",
                "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:10]}",
                "event_time": int(time.time()),
                "event": event,
            }
        )
        return await self.post(body, "application/json")

    # --- reading ------------------------------------------------------------------------

    async def replies(self, key: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """The first ``count`` messages the bot sent to one response_url."""
        calls: list[SlackCall] = await self.slack.wait_for(
            "response_url", count, timeout, predicate=lambda c: c.params.get("_key") == key
        )
        return [c.params for c in calls]

    async def reply(self, key: str, nth: int = 1) -> dict[str, Any]:
        return (await self.replies(key, nth))[nth - 1]

    # --- data ---------------------------------------------------------------------------

    async def add_customer(
        self,
        kvk: str,
        name: str,
        *,
        env: Environment = Environment.PRODUCTION,
        tenant_id: str | None = None,
        approve: tuple[str, ...] | None = SCOPES,
        account_manager: str | None = ADMIN,
    ) -> int:
        """A customer in the database (and, with ``approve``, approved at the stand-in)."""
        tenant_id = tenant_id or str(uuid.uuid4())
        if approve is not None:
            self.sim.approve(tenant_id, env.value, list(approve))
        async with self.runtime.bot.db.transaction() as session:
            customer = await add_customer(
                NewCustomer(kvk, name, env, tenant_id, account_manager),
                session=session,
                state=State.PENDING,
            )
            return customer.id


def text_of(message: dict[str, Any]) -> str:
    """Everything a person would read in a message: fallback text and block texts."""
    parts = [message.get("text") or ""]
    blocks = message.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    parts += _block_texts(blocks)
    return "\n".join(parts)


def _block_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [
            t for v in node.values() if isinstance(v, dict | list) for t in _block_texts(v)
        ]
    if isinstance(node, list):
        return [t for item in node for t in _block_texts(item)]
    return []


async def start_bot(
    database_url: str,
    slack: FakeSlack,
    sim: Simulator,
    *,
    schedule: bool = False,
    worker_id: str = "test",
    role: Role = Role.ALL,
    check_engine: bool = False,
    **overrides: Any,
) -> BotHarness:
    """A running bot; the scheduler only with ``schedule`` (tests drive checks themselves).
    ``check_engine``: the scheduler and the senders run in a check engine process, as
    ``serve`` runs them (:class:`bot.runtime.CheckEngine`); otherwise on the test's loop,
    where a test can watch and drive them."""
    settings = bot_settings(database_url, sim, slack, **overrides)
    for watch in WATCH:
        watch.whole_system = True
    runtime = Runtime(settings, worker_id=worker_id, role=role, check_engine=check_engine)
    await runtime.start(schedule=schedule)
    return BotHarness(runtime, slack, sim)


async def eventually(predicate: Any, timeout: float = 5.0, every: float = 0.02) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(every)


def unexpected_errors(log_text: str, expected: tuple[str, ...] = ()) -> list[str]:
    """The ERROR (and CRITICAL) lines and tracebacks of a ``serve`` log that contain none of
    the ``expected`` pieces of text: a whole-system test fails on any of them."""
    lines = log_text.splitlines()
    found = [
        line
        for line in lines
        if (" ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"))
    ]
    return [line for line in found if not any(piece in line for piece in expected)]
