"""Logs of a real ``serve`` process: one JSON object per line with a request or check id, and
no secret, token, invitation code or response URL in any line, even at DEBUG, across a whole
session of commands, checks, an invitation, a link, a webhook delivery, refused requests
(bad signature, stale or non-numeric timestamp, raw newlines, non-UTF-8) and a database
error during a write; the same in text format over Socket Mode, where no forged line can
appear."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.core.logs import TextFormatter, _LibraryPayloads, quiet_payload_logs
from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.simulator import Simulator, sign_webhook
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from tests.fakes.socket_mode import FakeSocketModeServer
from tests.harness import ADMIN, ALERTS, BOT_TOKEN, SCOPES, SIGNING_SECRET
from tests.processes import free_port, serve, wait_ready

CODE = "INV-SECRET-7Q2X"
FAILED_CODE = "INV-NEVER-STORED-4K"  # its write fails: the SQL error must not carry it
REFUSED_CODE = "INV-UNSIGNED-9Z"  # in requests refused before any listener
FORGED = "FORGED-LINE ERROR admin password reset"
WEBHOOK_SECRET = "whsec-test-0123456789"
TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def command_body(slack: FakeSlack, text: str) -> str:
    return urlencode({
        "command": "/brincr", "text": text, "user_id": ADMIN, "channel_id": "C0SALES",
        "team_id": "T0FAKE", "response_url": slack.response_url_base + "k",
        "trigger_id": "1.1.abc", "api_app_id": "A0FAKE",
    })  # fmt: skip


def signed(body: str | bytes, ts: str | None = None) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    raw = body.encode() if isinstance(body, str) else body
    mac = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
    signature = "v0=" + mac.hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip


async def logged(log_file: Path, *texts: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Wait until the process has written every one of ``texts`` to its log."""
    deadline = time.monotonic() + timeout
    while True:
        text = log_file.read_text() if log_file.exists() else ""  # noqa: ASYNC240
        missing = [t for t in texts if t not in text]
        if not missing:
            return
        assert time.monotonic() < deadline, f"never logged: {missing}"
        await asyncio.sleep(0.05)


async def send_command(client: httpx.AsyncClient, port: int, slack: FakeSlack, text: str) -> None:
    body = command_body(slack, text)
    response = await client.post(
        f"http://127.0.0.1:{port}/slack/events", content=body, headers=signed(body)
    )
    assert response.status_code == 200


async def send_refused_requests(client: httpx.AsyncClient, port: int, slack: FakeSlack) -> None:
    """Requests refused before any listener: each answered 401/400, none with a traceback."""
    url = f"http://127.0.0.1:{port}/slack/events"
    body = command_body(slack, f"invite 44444444 {REFUSED_CODE}")
    forged = body + "\n2026-01-01 00:00:00,000 " + FORGED + "\r\n" + FORGED
    stale = str(int(time.time()) - 600)
    cases: list[tuple[str | bytes, dict[str, str], int]] = [
        (body, {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}, 401),  # bad signature
        (body, {**signed(body), "X-Slack-Signature": signed("other")["X-Slack-Signature"]}, 401),
        (body, signed(body, ts=stale), 401),  # stale timestamp
        (body, {**signed(body), "X-Slack-Request-Timestamp": "abc"}, 401),  # not a number
        (forged, {**signed(body), "X-Slack-Signature": "v0=bad"}, 401),  # raw newlines
        (forged, signed(forged), 200),  # signed, with raw newlines: a listener reads it
        (body.encode() + b"\xff\xfe", signed(body.encode() + b"\xff\xfe"), 400),  # not UTF-8
        (b"\xff" + FORGED.encode(), {"X-Slack-Request-Timestamp": "abc"}, 401),
    ]
    for content, headers, status in cases:
        response = await client.post(url, content=content, headers=headers)
        assert response.status_code == status, (content[:40], headers)
    view = json.dumps({
        "type": "view_submission", "user": {"id": ADMIN}, "team": {"id": "T0FAKE"},
        "view": {"callback_id": "invite", "state": {"values": {"c": {"c": {
            "type": "plain_text_input", "value": REFUSED_CODE}}}}},
        "response_urls": [{"response_url": slack.response_url_base + "view"}],
    })  # fmt: skip
    payload = urlencode({"payload": view})
    response = await client.post(url, content=payload, headers={**signed(payload + "x")})
    assert response.status_code == 401
    for malformed in (
        f"GARBAGE\x01 /slack/events?code={REFUSED_CODE} HTTP/1.1\r\n\r\n".encode(),
        f"POST /slack/events HTTP/1.1\r\nHost: x\r\nBad Header: {REFUSED_CODE}\r\n\r\n".encode(),
    ):  # aiohttp refuses these itself (400) and would quote them with a traceback
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(malformed)
        await writer.drain()
        assert (await reader.readline()).startswith(b"HTTP/1.0 400")
        writer.close()
    webhook = f"http://127.0.0.1:{port}/webhooks/visma"
    raw = ('{"tenantId": "x", "note": "\n' + FORGED + '"}').encode()
    for headers in (
        {"X-VWD-Signature-V1": "bad"},
        {"X-VWD-Signature-V1": sign_webhook(WEBHOOK_SECRET, raw),
         "x-vwd-notification-id": "n" * 150, "x-vwd-event-id": "tenant_application_added"},
    ):  # fmt: skip
        response = await client.post(webhook, content=raw, headers=headers)
        assert response.status_code in (400, 401)


def fail_invitation_writes(sqlite_url: str) -> None:
    """From now on every invitation insert fails in the database (a write error mid-session)."""
    connection = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    connection.execute(
        "CREATE TRIGGER fail_invitations BEFORE INSERT ON invitations "
        "BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END"
    )
    connection.commit()
    connection.close()


def assert_clean(text: str, secrets: list[str], slack: FakeSlack) -> None:
    for secret in [*secrets, CODE, FAILED_CODE, REFUSED_CODE]:
        assert secret not in text, secret
    assert slack.response_url_base not in text  # response URLs let anyone post for 30 min
    assert "eyJ" not in text  # no JWT access token
    for line in text.splitlines():
        assert not line.startswith(("FORGED", "2026-01-01")), line
    assert FORGED not in text


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
            await logged(log_file, "for 22222222 (", "/brincr help")  # the invitation is stored
            sim.approve(TENANT, "production", list(SCOPES))
            await send_command(client, port, slack, f"link 22222222 {TENANT}")
            await send_refused_requests(client, port, slack)
            fail_invitation_writes(sqlite_url)
            body = command_body(slack, f"invite 33333333 {FAILED_CODE}")
            failed = await client.post(
                f"http://127.0.0.1:{port}/slack/events", content=body, headers=signed(body)
            )
            assert failed.status_code == 200  # acknowledged; the write fails after the ack
            body = json.dumps({"tenantId": TENANT}).encode()
            response = await client.post(
                f"http://127.0.0.1:{port}/webhooks/visma", content=body,
                headers={"X-VWD-Signature-V1": sign_webhook(WEBHOOK_SECRET, body),
                         "x-vwd-event-id": "tenant_application_added",
                         "x-vwd-tenant-id": TENANT, "x-vwd-notification-id": "n-1"},
            )  # fmt: skip
            assert response.status_code == 202
            # a sweep, the outbox sender, the webhook's processing, the failed write
            await logged(log_file, '"sweep-', "visma webhook n-1: ", "simulated write failure",
                         "outbox ")  # fmt: skip
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    lines = log_file.read_text().splitlines()
    assert len(lines) > 20
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "name", "message", "correlation_id"} <= set(records[0])
    iso_utc = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    assert all(iso_utc.match(r["time"]) for r in records), records[0]["time"]
    noisy = ("apscheduler", "alembic.runtime.plugins")
    chatter = [r for r in records if r["name"].startswith(noisy)
               or r["message"].startswith(("Context impl", "Will assume"))]  # fmt: skip
    assert chatter == []  # the libraries' start-up lines (the bot logs its own)
    assert any(r["correlation_id"].startswith("req-") for r in records)
    assert any(r["correlation_id"].startswith("sweep-") for r in records)
    assert any("/brincr invite" in r["message"] for r in records)
    assert slack.calls_to("chat.postMessage"), "the hand-off was posted"
    text = log_file.read_text()
    assert_clean(text, secrets, slack)
    assert any("simulated write failure" in r["message"] or "simulated write failure"
               in r.get("exc_info", "") for r in records)  # fmt: skip
    refused = [r for r in records if r["message"].startswith("slack request refused")]
    assert len(refused) >= 8
    for record in refused:  # method, path, size and reason: nothing else, no traceback
        assert record["message"].startswith("slack request refused: POST /slack/events (")
        assert "exc_info" not in record
    assert "Traceback" not in "".join(json.dumps(r) for r in records if "refused" in r["message"])


async def test_a_socket_mode_session_in_text_format_logs_no_codes_urls_or_forged_lines(
    sqlite_url: str, fakes: tuple[FakeSlack, Simulator], tmp_path: Path
) -> None:
    slack, sim = fakes
    async with FakeSocketModeServer() as server:
        slack.socket_url = server.url
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE"))},
            **sim.settings_env(),
            "DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": "xapp-1-test-app-token", "SLACK_API_URL": slack.api_url,
            "ALERT_CHANNEL": ALERTS, "BRINCR_SCOPES": " ".join(SCOPES), "CHECK_INTERVAL": "2s",
            "BOT_ADMINS": ADMIN, "VISMA_WEBHOOK_SECRETS": WEBHOOK_SECRET, "HOST": "127.0.0.1",
            "PORT": str(port), "LOG_FORMAT": "text", "LOG_LEVEL": "DEBUG",
        }  # fmt: skip
        log_file = tmp_path / "serve.log"
        process = serve(env, log_file)
        try:
            await wait_ready(port)
            await server.wait_connected(timeout=20)
            for text in (f"invite 22222222 {CODE}", f"invite 33333333 {FAILED_CODE}\n{FORGED}",
                         "status 22222222", "help"):  # fmt: skip
                envelope = await server.send_envelope("slash_commands", {
                    "command": "/brincr", "text": text, "user_id": ADMIN,
                    "channel_id": "C0SALES", "team_id": "T0FAKE", "api_app_id": "A0FAKE",
                    "response_url": slack.response_url_base + "sock", "trigger_id": "1.1.x",
                })  # fmt: skip
                await server.wait_ack(envelope)
            async with httpx.AsyncClient(timeout=10) as client:
                raw = ('{"note": "\n' + FORGED + '"}').encode()
                response = await client.post(
                    f"http://127.0.0.1:{port}/webhooks/visma", content=raw,
                    headers={"X-VWD-Signature-V1": "bad"},
                )  # fmt: skip
                assert response.status_code == 401
            await logged(log_file, "Received message", "visma webhook refused", "/brincr help")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    text = log_file.read_text()
    assert "DEBUG" in text and "Received message" in text  # Socket Mode's loggers ran
    assert_clean(text, [BOT_TOKEN, WEBHOOK_SECRET, "xapp-1-test-app-token"], slack)


def test_text_logs_escape_control_characters_so_no_line_can_be_forged() -> None:
    formatter = TextFormatter("%(levelname)s %(name)s %(message)s")
    record = logging.LogRecord(
        "bot.web.server", logging.WARNING, __file__, 1,
        "refused: %s", ("abc\n2026-01-01 ERROR " + FORGED + "\r\x1b[2J\u2028x",), None,
    )  # fmt: skip
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    assert line.endswith("abc\\n2026-01-01 ERROR " + FORGED + "\\r\\x1b[2J\\u2028x")


def test_bolt_s_invalid_signature_line_keeps_no_body_at_any_level() -> None:
    records = []
    for level in (logging.DEBUG, logging.INFO, logging.WARNING):
        record = logging.LogRecord(
            "slack_bolt.AsyncApp", level, __file__, 1,
            "Invalid request signature detected (signature: v0=1, timestamp: 1, body: %s)",
            (f"text=invite+1+{CODE}&response_url=https://hooks.slack.com/commands/T/1/x",), None,
        )  # fmt: skip
        assert _LibraryPayloads().filter(record)
        records.append(record.getMessage())
    assert records == ["Invalid request signature detected (payload not logged)"] * 3


@pytest.mark.parametrize(
    ("logger", "message", "args"),
    [
        ("slack_sdk.web.async_base_client",
         "Sending a request - url: https://slack.com/api/chat.postMessage, json: %s",
         ({"text": f"Your code: {CODE}"},)),
        ("slack_sdk.webhook.async_client",
         "Received the following response - status: 200, body: %s", (f"ok {CODE}",)),
        ("aiosqlite", "executing %s", ((f"INSERT INTO invitations VALUES ('{CODE}')",),)),
    ],
)  # fmt: skip
def test_debug_payloads_of_slack_sdk_and_aiosqlite_never_reach_the_log(
    logger: str, message: str, args: tuple[object, ...]
) -> None:
    quiet_payload_logs()
    record = logging.LogRecord(logger, logging.DEBUG, __file__, 1, message, args, None)
    assert all(f.filter(record) for f in logging.getLogger(logger).filters)
    text = record.getMessage()
    assert CODE not in text and ("not logged" in text), text


def test_text_lines_carry_the_time_in_iso_8601_utc() -> None:
    from bot.core.logs import TextFormatter

    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "hello", (), None)
    record.created = 1796232579.828  # 2026-12-02 17:29:39.828 UTC
    record.correlation_id = "-"
    line = TextFormatter("%(asctime)s %(message)s").format(record)
    assert line == "2026-12-02T17:29:39.828Z hello"
