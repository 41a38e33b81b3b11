"""The HTTP listener cuts off clients that never finish a request (slowloris): unfinished
headers and idle connections after ``HEADER_TIMEOUT``, an unfinished body with a 408 after
``REQUEST_TIMEOUT``. Real sockets against the real listener."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from bot.web import server
from tests.harness import BotHarness, start_bot


@pytest.fixture
async def bot(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BotHarness]:
    monkeypatch.setattr(server, "HEADER_TIMEOUT", 0.5)
    monkeypatch.setattr(server, "REQUEST_TIMEOUT", 0.5)
    harness = await start_bot(sqlite_url, slack, sim, visma_webhook_secrets="whsec-limits")
    yield harness
    await harness.close()


async def _until_closed(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, float]:
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), timeout=limit)  # read() returns at EOF
    return data, time.monotonic() - started


async def test_a_client_that_never_finishes_its_headers_is_cut_off(bot: BotHarness) -> None:
    port = bot.runtime.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /webhooks/visma HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    await writer.drain()
    data, elapsed = await _until_closed(reader, limit=5)
    assert data == b"" and elapsed < 3
    writer.close()


async def test_a_client_that_never_finishes_its_body_gets_a_408(bot: BotHarness) -> None:
    port = bot.runtime.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b'POST /webhooks/visma HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a": ')
    await writer.drain()
    started = time.monotonic()
    status = await asyncio.wait_for(reader.readline(), timeout=5)
    assert status.startswith(b"HTTP/1.1 408") and time.monotonic() - started < 3
    writer.close()
    assert (await bot.http.get(bot.url + "/healthz")).status_code == 200  # others still served
