"""Requests to ``/slack/events`` that fail verification are refused before Bolt sees them:
401 for a bad or missing signature and a stale or non-numeric timestamp, 400 for a body that
is not UTF-8 — never a 500, and logged by method, path, size and reason only."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlencode

import pytest

from tests.harness import ADMIN, BotHarness

CODE = "INV-REFUSED-3J"
SERVER_SIDE = ("bot", "handlers", "slack", "aiohttp")  # not the test's own httpx client


def _body(bot: BotHarness) -> str:
    _, response_url = bot.new_response_url()
    return urlencode({"command": "/brincr", "text": f"invite 12345678 {CODE}", "user_id": ADMIN,
                      "channel_id": "C0SALES", "team_id": "T0FAKE",
                      "response_url": response_url})  # fmt: skip


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"X-Slack-Request-Timestamp": "abc"}, 401, "timestamp missing or not a number"),
        ({"X-Slack-Request-Timestamp": ""}, 401, "timestamp missing or not a number"),
        ({"X-Slack-Request-Timestamp": "1" * 40}, 401, "timestamp missing or not a number"),
        ({"X-Slack-Request-Timestamp": str(int(time.time()) - 301)}, 401, "five minutes off"),
        ({"X-Slack-Signature": "v0=" + "0" * 64}, 401, "signature missing or wrong"),
        ({"X-Slack-Signature": ""}, 401, "signature missing or wrong"),
    ],
)
async def test_an_unverifiable_slack_request_is_a_401_logged_without_its_body(
    bot: BotHarness,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, str],
    status: int,
    reason: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = _body(bot)
    headers = {**bot.signed_headers(body), **change,
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    response = await bot.http.post(bot.url + "/slack/events", content=body, headers=headers)
    assert response.status_code == status
    assert response.json() == {"error": response.json()["error"]} and reason in response.text
    (line,) = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert (
        line
        == f"slack request refused: POST /slack/events ({len(body)} bytes): "
        + (response.json()["error"])
    )
    server_side = [r.getMessage() for r in caplog.records if r.name.startswith(SERVER_SIDE)]
    assert server_side == [line]  # nothing else: Bolt never saw the request
    assert not [r for r in caplog.records if r.exc_info]
    assert not bot.slack.calls


async def test_a_slack_body_that_is_not_utf8_is_a_400(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    raw = _body(bot).encode() + b"&x=\xff\xfe"
    headers = {**bot.signed_headers(raw.decode("latin-1")),
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    response = await bot.http.post(bot.url + "/slack/events", content=raw, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "body is not UTF-8"}
    assert not [r for r in caplog.records if r.exc_info]
