"""The HTTP client every check goes through, against the Visma/Brincr stand-in: a body is read
up to the cap and no further, and a whole exchange ends at the deadline however slowly the
server trickles (the check's own timeout is a second lock behind this one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from bot.clients.upstream_http import MAX_BODY, UpstreamHttp
from bot.simulator import Simulator

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def http() -> AsyncIterator[UpstreamHttp]:
    client = UpstreamHttp(AiohttpTransport(), httpx.Timeout(5.0), deadline=0.5)
    yield client
    await client.aclose()


async def test_an_answer_is_read_up_to_the_body_cap_and_no_further(
    sim: Simulator, http: UpstreamHttp
) -> None:
    sim.fault("production", "token", "huge_body")  # 500 with 64 MiB of HTML
    response = await http.post(
        sim.token_url("production"), content=b"grant_type=client_credentials", headers=FORM
    )
    assert response.status_code == 500
    assert len(response.content) == MAX_BODY == 256 * 1024


class EndlessBody(httpx.AsyncByteStream):
    """An answer that never ends, counting what the client took of it."""

    def __init__(self) -> None:
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0)
            self.taken += CHUNK
            yield b" " * CHUNK


CHUNK = 64 * 1024


async def test_the_reader_stops_taking_bytes_at_the_cap() -> None:
    body = EndlessBody()
    transport = httpx.MockTransport(lambda request: httpx.Response(500, stream=body))
    client = UpstreamHttp(transport, httpx.Timeout(5.0), deadline=2.0)
    try:
        response = await client.get("https://upstream.invalid/token", headers={})
    finally:
        await client.aclose()
    assert len(response.content) == MAX_BODY
    assert body.taken <= MAX_BODY + CHUNK  # what it did not need, it never read


async def test_a_trickling_answer_ends_at_the_deadline(sim: Simulator, http: UpstreamHttp) -> None:
    sim.fault("production", "token", "trickle")  # one byte at a time, each within the timeout
    started = time.monotonic()
    async with asyncio.timeout(3):  # a client without its deadline fails here, not hangs
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                sim.token_url("production"), content=b"grant_type=client_credentials", headers=FORM
            )
    assert time.monotonic() - started < 1.0
