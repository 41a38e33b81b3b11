"""Logs of a real ``serve`` process: one JSON object per line with a request or check id, and
no secret, token or invitation code in any line, even at DEBUG, across a whole session of
commands, checks, an invitation, a link and a webhook delivery."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator, sign_webhook
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from tests.harness import ADMIN, ALERTS, BOT_TOKEN, SCOPES, SIGNING_SECRET
from tests.test_replicas import free_port, serve, wait_ready

CODE = "INV-SECRET-7Q2X"
WEBHOOK_SECRET = "whsec-test-0123456789"
TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeSlack, Simulator]]:
    async with FakeSlack() as slack, Simulator() as sim:
        yield slack, sim


async def send_command(client: httpx.AsyncClient, port: int, slack: FakeSlack, text: str) -> None:
    body = urlencode({
        "command": "/brincr", "text": text, "user_id": ADMIN, "channel_id": "C0SALES",
        "team_id": "T0FAKE", "response_url": slack.response_url_base + "k",
        "trigger_id": "1.1.abc", "api_app_id": "A0FAKE",
    })  # fmt: skip
    ts = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    headers = {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    response = await client.post(
        f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers
    )
    assert response.status_code == 200


async def test_a_serve_session_logs_json_lines_without_secrets_tokens_or_codes(
    sqlite_url: str, fakes: tuple[FakeSlack, Simulator], tmp_path: Path
) -> None:
    slack, sim = fakes
    db = Database(sqlite_url)
    sim.approve("00000000-0000-4000-8000-000000000001", "production", list(SCOPES))
    async with db.transaction() as session:
        new = NewCustomer("11111111", "Gezond", Environment.PRODUCTION,
                          "00000000-0000-4000-8000-000000000001")  # fmt: skip
        await add_customer(new, session=session, state=State.PENDING)
    await db.close()
    secrets = [BOT_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET, CODE]
    secrets += [v for k, v in sim.settings_env().items() if k.endswith("_SECRET")]
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
        **sim.settings_env(),
        "DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.api_url,
        "ALERT_CHANNEL": ALERTS, "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "2s",
        "BOT_ADMINS": ADMIN, "VISMA_WEBHOOK_SECRETS": WEBHOOK_SECRET, "HOST": "127.0.0.1",
        "PORT": str(port), "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG",
    }  # fmt: skip
    log_file = tmp_path / "serve.log"
    process = serve(env, log_file)
    try:
        await wait_ready(port)
        async with httpx.AsyncClient(timeout=10) as client:
            for text in ("status 11111111", "check 11111111", f"invite 22222222 {CODE}",
                         "list", "help"):  # fmt: skip
                await send_command(client, port, slack, text)
            await asyncio.sleep(1.0)
            sim.approve(TENANT, "production", list(SCOPES))
            await send_command(client, port, slack, f"link 22222222 {TENANT}")
            body = json.dumps({"tenantId": TENANT}).encode()
            response = await client.post(
                f"http://127.0.0.1:{port}/webhooks/visma", content=body,
                headers={"X-VWD-Signature-V1": sign_webhook(WEBHOOK_SECRET, body),
                         "x-vwd-event-id": "tenant_application_added",
                         "x-vwd-tenant-id": TENANT, "x-vwd-notification-id": "n-1"},
            )  # fmt: skip
            assert response.status_code == 202
            await asyncio.sleep(2.5)  # a sweep, the outbox sender, the webhook's processing
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    lines = log_file.read_text().splitlines()
    assert len(lines) > 20
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "name", "message", "correlation_id"} <= set(records[0])
    assert any(r["correlation_id"].startswith("req-") for r in records)
    assert any(r["correlation_id"].startswith("sweep-") for r in records)
    assert any("/brincr invite" in r["message"] for r in records)
    assert slack.calls_to("chat.postMessage"), "the hand-off was posted"
    text = log_file.read_text()
    for secret in secrets:
        assert secret not in text
    assert "eyJ" not in text  # no JWT access token
