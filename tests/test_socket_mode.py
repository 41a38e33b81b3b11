"""Socket Mode without Slack: the fake Web API answers apps.connections.open with a local
WebSocket URL; slash commands arrive as envelopes and are acknowledged over the socket."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from tests.fakes.socket_mode import FakeSocketModeServer
from tests.harness import SUPPORT, BotHarness, start_bot, text_of


@pytest.fixture
async def socket_bot(sqlite_url: str) -> AsyncIterator[tuple[BotHarness, FakeSocketModeServer]]:
    async with FakeSlack() as slack, Simulator() as sim, FakeSocketModeServer() as server:
        slack.socket_url = server.url
        bot = await start_bot(
            sqlite_url, slack, sim, slack_app_token="xapp-1-test", slack_signing_secret=None
        )
        try:
            yield bot, server
        finally:
            await bot.close()


def command(bot: BotHarness, text: str) -> tuple[dict[str, str], str]:
    key, response_url = bot.new_response_url()
    payload = {
        "token": "legacy", "team_id": "T0FAKE", "team_domain": "fake", "channel_id": "C0SUPPORT",
        "channel_name": "support", "user_id": SUPPORT, "user_name": "support",
        "command": "/brincr", "text": text, "api_app_id": "A0FAKE",
        "response_url": response_url, "trigger_id": f"{uuid.uuid4().int % 10**12}.1.abc",
    }  # fmt: skip
    return payload, key


async def test_a_slash_command_over_the_socket_is_acked_and_answered(
    socket_bot: tuple[BotHarness, FakeSocketModeServer],
) -> None:
    bot, server = socket_bot
    await bot.add_customer("12345678", "Bouwbedrijf")
    payload, key = command(bot, "status 12345678")
    envelope = await server.send_envelope("slash_commands", payload)
    await server.wait_ack(envelope)
    assert "Bouwbedrijf" in text_of(await bot.reply(key))
    # HTTP mode is off: no /slack/events route, the health endpoints still answer
    assert (await bot.http.post(bot.url + "/slack/events", content="x")).status_code == 404
    assert (await bot.http.get(bot.url + "/healthz")).status_code == 200


async def test_a_dropped_socket_is_reconnected(
    socket_bot: tuple[BotHarness, FakeSocketModeServer],
) -> None:
    bot, server = socket_bot
    await server.wait_connections(1)
    await server.drop_connections()
    await server.wait_connections(2, timeout=20)
    payload, key = command(bot, "help")
    envelope = await server.send_envelope("slash_commands", payload)
    await server.wait_ack(envelope)
    assert "/brincr status <customer>" in text_of(await bot.reply(key))
