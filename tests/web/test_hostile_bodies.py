"""Signed but hostile bodies get a clear 400, never a 500 (issue 19, finding 11): a NUL in a
webhook's values or body (PostgreSQL text cannot hold one), a Slack payload nested deeper
than the JSON parser recurses."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from tests.harness import BotHarness, start_bot
from tests.web.test_webhook_endpoint import ADDED, FIRST, SECOND, deliver

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture
async def bot(database_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(database_url, slack, sim, visma_webhook_secrets=f"{FIRST},{SECOND}")
    yield harness
    await harness.close()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"eventType": ADDED + "\u0000", "tenantId": TENANT}, "event type contains a control"),
        ({"eventType": ADDED, "timestamp": "2026-12-03\u0000"}, "timestamp contains a control"),
    ],
)
async def test_a_nul_in_a_signed_webhook_value_is_a_400(
    bot: BotHarness, body: dict[str, str], says: str
) -> None:
    response, _ = await deliver(bot, ADDED, TENANT, body=json.dumps(body).encode())
    assert response.status_code == 400 and says in response.json()["error"]


async def test_a_nul_byte_in_a_signed_webhook_body_is_a_400(bot: BotHarness) -> None:
    raw = b'{"eventType": "tenant_application_added", "note": "a\x00b"}'
    response, _ = await deliver(bot, ADDED, TENANT, body=raw)
    assert response.status_code == 400 and "NUL" in response.json()["error"]
    again, _ = await deliver(bot, ADDED, TENANT)  # and the endpoint still works
    assert again.status_code == 202


async def test_a_signed_slack_payload_nested_too_deep_is_a_400(bot: BotHarness) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    response = await bot.post(urlencode({"payload": deep}), "application/x-www-form-urlencoded")
    assert response.status_code == 400 and "nested" in response.json()["error"]
    nested = json.dumps({"type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:8]}"})
    deep_json = nested[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = await bot.post(deep_json, "application/json")
    assert response.status_code == 400 and "nested" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ('{"type": "event_callback", "event_id": "EvL", "event": []}', "application/json",
         "event is not a JSON object"),
        ('{"type": "event_callback", "event_id": "EvT", "event": "app_home_opened"}',
         "application/json", "event is not a JSON object"),
        ('["event_callback"]', "application/json", "body is not a JSON object"),
        ("payload=%5B1%5D", "application/x-www-form-urlencoded", "body is not a JSON object"),
        ("payload=%22block_actions%22", "application/x-www-form-urlencoded",
         "body is not a JSON object"),
        ("payload=%7Bbad", "application/x-www-form-urlencoded", "body is not valid JSON"),
        ("payload=", "application/x-www-form-urlencoded", "body is not valid JSON"),
        ("{bad", "application/json", "body is not valid JSON"),
    ],
)  # fmt: skip
async def test_a_signed_body_of_the_wrong_shape_is_a_400(
    bot: BotHarness, body: str, content_type: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack never sends these; Bolt's listeners failed on them with a 500 and a traceback."""
    response = await bot.post(body, content_type)
    assert response.status_code == 400 and response.json()["error"] == says
    assert "Traceback" not in caplog.text and not any(
        r.levelname == "ERROR" for r in caplog.records
    )
    check = json.dumps({"type": "url_verification", "challenge": "still-here"})
    again = await bot.post(check, "application/json")  # and the endpoint still answers
    assert again.status_code == 200 and "still-here" in again.text
