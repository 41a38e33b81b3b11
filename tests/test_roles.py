"""``serve --role web`` and ``serve --role worker`` as two real processes on one PostgreSQL
(the stand-in and fake Slack shared): the worker checks and alerts once, the web replica
answers a signed slash command, and neither does the other's job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select

from bot.demo.fake_slack import FakeSlack
from bot.domain.roles import Role
from bot.simulator import Simulator
from bot.simulator.webhooks import sign_webhook
from storage.db import Database
from storage.models import CheckResult, Customer, Notification, WebhookEvent
from tests.harness import (
    ADMIN,
    ALERTS,
    BOT_TOKEN,
    SCOPES,
    SIGNING_SECRET,
    SUPPORT,
    eventually,
    start_bot,
    text_of,
)
from tests.processes import free_port, seed_fleet, serve, wait_ready

INTERVAL = 2.0
BIN = str(Path(sys.executable).with_name("brincr-bot"))


def _slash_command(text: str, response_url: str, user: str = SUPPORT) -> tuple[str, dict[str, str]]:
    """A ``/brincr`` request signed as Slack signs it."""
    form = {
        "token": "legacy", "team_id": "T0FAKE", "team_domain": "fake", "channel_id": "C0SUP",
        "channel_name": "support", "user_id": user, "user_name": user.lower(),
        "command": "/brincr", "text": text, "api_app_id": "A0FAKE",
        "response_url": response_url, "trigger_id": f"{uuid.uuid4().int % 10**12}.1.abc",
    }  # fmt: skip
    body = urlencode(form)
    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
    }  # fmt: skip
    return body, headers


def _alerts_order(call: Any) -> bool:
    return call.params.get("channel") == ALERTS and "brincr:order" in str(call.params)


def _announces_maintenance(call: Any) -> bool:
    return call.params.get("channel") == ALERTS and "upgrade" in str(call.params)


@pytest.mark.postgres
async def test_web_answers_people_and_worker_checks_alerts_and_delivers(
    postgres_url: str, fakes: tuple[FakeSlack, Simulator], tmp_path: Path
) -> None:
    slack, sim = fakes
    tenants = await seed_fleet(postgres_url, sim, 6, first_kvk=61000000)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
        **sim.settings_env(),
        "DATABASE_URL": postgres_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url, "ALERT_CHANNEL": ALERTS,
        "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "2s", "HOST": "127.0.0.1",
        "LOG_FORMAT": "text", "BOT_ADMINS": ADMIN, "API_TOKENS": "api-token-for-roles-test-000000",
    }  # fmt: skip
    web_port, worker_port = free_port(), free_port()
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    web = serve(
        {**env, "PORT": str(web_port), "SLACK_SIGNING_SECRET": SIGNING_SECRET},
        web_log, "--role", "web",
    )  # fmt: skip
    # The worker gets no signing secret: it never listens to Slack, so it needs none.
    worker = serve({**env, "PORT": str(worker_port)}, worker_log, "--role", "worker")
    try:
        await wait_ready(web_port)
        await wait_ready(worker_port)
        async with httpx.AsyncClient(timeout=10) as http:
            web_url, worker_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{worker_port}"
            ready: dict[str, Any] = {
                name: (await http.get(url + "/readyz")).json()
                for name, url in (("web", web_url), ("worker", worker_url))
            }
            assert ready["web"]["role"] == "web"
            assert set(ready["web"]["checks"]) == {"database"}  # no scheduler to wait for
            assert ready["worker"]["role"] == "worker"
            assert set(ready["worker"]["checks"]) == {"database", "scheduler"}
            # The worker listens to nothing but its health endpoints.
            body, headers = _slash_command("help", slack.response_url_base + "nobody")
            assert (await http.post(worker_url + "/slack/events", content=body,
                                    headers=headers)).status_code == 404  # fmt: skip
            webhook = await http.post(worker_url + "/webhooks/visma", content=b"{}")
            assert webhook.status_code == 404
            api = {"Authorization": "Bearer api-token-for-roles-test-000000"}
            for url, status in ((worker_url, 404), (web_url, 200)):
                listed = await http.get(url + "/api/v1/customers", headers=api)
                assert listed.status_code == status
            assert (await http.get(worker_url + "/metrics")).status_code == 200

            db = Database(postgres_url)

            async def checks_of(tenant: str | None = None) -> int:
                async with db.transaction() as session:
                    query = select(func.count(func.distinct(CheckResult.customer_id)))
                    if tenant is not None:
                        query = (
                            select(func.count())
                            .select_from(CheckResult)
                            .join(Customer, Customer.id == CheckResult.customer_id)
                            .where(Customer.tenant_id == tenant)
                        )
                    return int(await session.scalar(query) or 0)

            async def everyone_checked() -> bool:  # by the worker
                return await checks_of() == len(tenants)

            await eventually(everyone_checked, timeout=30, every=0.2)
            sim.revoke(tenants[0], ["brincr:order"])
            await slack.wait_for("chat.postMessage", 1, 30.0, predicate=_alerts_order)
            checked = await checks_of(tenants[0])

            async def checked_again() -> bool:  # a second alert would be made by this check
                return await checks_of(tenants[0]) > checked

            await eventually(checked_again, timeout=30, every=0.2)
            await db.close()

            body, headers = _slash_command(f"status {61000000}", slack.response_url_base + "k1")
            answered = await http.post(web_url + "/slack/events", content=body, headers=headers)
            assert answered.status_code == 200
            calls = await slack.wait_for(
                "response_url", 1, 10.0, predicate=lambda c: c.params.get("_key") == "k1"
            )
            assert "brincr:order" in text_of(calls[0].params)

            # A change made on the web replica is announced by the worker's outbox sender.
            body, headers = _slash_command(
                "maintenance sandbox 1h upgrade", slack.response_url_base + "k2", user=ADMIN
            )
            answered = await http.post(web_url + "/slack/events", content=body, headers=headers)
            assert answered.status_code == 200
            await slack.wait_for("chat.postMessage", 1, 10.0, predicate=_announces_maintenance)
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in (web, worker)]
    logs = {"web": web_log.read_text(), "worker": worker_log.read_text()}
    assert codes == [0, 0], {name: text[-2000:] for name, text in logs.items()}

    alerts = [m for m in slack.messages(ALERTS) if "thread_ts" not in m]
    assert len([m for m in alerts if "brincr:order" in str(m.get("blocks"))]) == 1, alerts
    # The web replica neither checked on schedule nor delivered; the worker did both.
    assert "sweep checked" in logs["worker"]
    assert "scheduler started" not in logs["web"]
    assert "sweep checked" not in logs["web"]
    db = Database(postgres_url)
    async with db.transaction() as session:
        senders = set(await session.scalars(select(Notification.claimed_by)))
    await db.close()
    assert senders == {f"{socket.gethostname()[:40]}:{worker.pid}"}, senders


def test_a_worker_needs_no_signing_secret_and_a_web_replica_does(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}

    def problems(*args: str) -> str:
        result = subprocess.run([BIN, "serve", *args], env=env, capture_output=True,
                                text=True, cwd=tmp_path, timeout=60)  # fmt: skip
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        return result.stderr

    worker = problems("--role", "worker")
    assert "SLACK_BOT_TOKEN" in worker and "SLACK_SIGNING_SECRET" not in worker
    assert "SLACK_SIGNING_SECRET" in problems("--role", "web")
    assert "SLACK_SIGNING_SECRET" in problems()  # all: as before
    assert "'janitor' is not one of 'all', 'web', 'worker'" in problems("--role", "janitor")


async def test_a_split_on_sqlite_warns_and_the_worker_serves_only_health(
    sqlite_url: str, fakes: tuple[FakeSlack, Simulator], tmp_path: Path
) -> None:
    slack, sim = fakes
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
        **sim.settings_env(),
        "DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack.api_url,
        "ALERT_CHANNEL": ALERTS, "BRINCR_SCOPES": " ".join(SCOPES), "HOST": "127.0.0.1",
        "PORT": str(port), "LOG_FORMAT": "text",
    }  # fmt: skip
    log = tmp_path / "worker.log"
    worker = serve(env, log, "--role", "worker")
    try:
        await wait_ready(port)
        async with httpx.AsyncClient(timeout=10) as http:
            ready = (await http.get(f"http://127.0.0.1:{port}/readyz")).json()
            refused = await http.post(f"http://127.0.0.1:{port}/slack/events", content=b"x")
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
    text = log.read_text()
    assert code == 0, text[-2000:]
    assert ready["role"] == "worker" and ready["ok"] is True
    assert refused.status_code == 404
    assert "--role worker on SQLite" in text and "use PostgreSQL" in text


async def test_a_web_replica_stores_a_visma_delivery_and_a_worker_processes_it(
    sqlite_url: str, fakes: tuple[FakeSlack, Simulator]
) -> None:
    slack, sim = fakes
    tenant = "00000000-0000-4000-8000-00000000abcd"
    sim.approve(tenant, "production", list(SCOPES))
    secrets = {"visma_webhook_secrets": "whsec-roles-0a1b2c3d"}
    web = await start_bot(sqlite_url, slack, sim, role=Role.WEB, worker_id="web", **secrets)
    worker = await start_bot(sqlite_url, slack, sim, role=Role.WORKER, worker_id="wk", **secrets)
    try:
        body = json.dumps({"tenantId": tenant, "eventType": "tenant_application_added"}).encode()
        headers = {
            "Content-Type": "application/json", "x-vwd-event-id": "tenant_application_added",
            "x-vwd-tenant-id": tenant, "x-vwd-notification-id": "n-roles-1",
            "X-VWD-Signature-V1": sign_webhook("whsec-roles-0a1b2c3d", body),
        }  # fmt: skip
        answer = await web.http.post(web.url + "/webhooks/visma", content=body, headers=headers)
        assert answer.status_code == 202
        await asyncio.sleep(0.3)
        assert sim.counters.token_requests(tenant_id=tenant) == 0  # web confirms nothing
        async with web.runtime.bot.db.transaction() as session:
            row = await session.get(WebhookEvent, "n-roles-1")
            assert row is not None and row.processed_at is None and row.claimed_until is None
        assert await worker.runtime.bot.tenant_events.retry_due() == 1
        assert sim.counters.token_requests(tenant_id=tenant) >= 1  # confirmed by the worker
        async with web.runtime.bot.db.transaction() as session:
            row = await session.get(WebhookEvent, "n-roles-1")
            assert row is not None and row.processed_at is not None
    finally:
        await web.close()
        await worker.close()
