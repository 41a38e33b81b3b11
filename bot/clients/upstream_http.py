"""HTTP for the health checks: httpx requests handed straight to the transport.

The checks send two requests per customer per interval and need none of what
``httpx.AsyncClient`` adds per request (base-URL and header merging, cookie extraction,
auth and redirect handling): measured, that machinery costs ~0.12 ms of CPU per request,
about a fifth of a check's CPU when a sweep runs 1,000 checks a second (docs/benchmarks.md).
Requests and responses are still httpx's, timeouts are passed the way AsyncClient passes
them (the ``timeout`` request extension), and the transport maps network errors to
``httpx.TimeoutException`` / ``httpx.TransportError`` as before.

Bounded: a request (connect, send and the whole body) ends within ``deadline`` seconds —
the transport's own timeouts bound each socket read only, so a server trickling one byte a
second would otherwise hold it for ever — and at most ``max_body`` bytes of a body are read:
the rest of a 64 MB error page is never read (the connection is dropped, not reused).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

MAX_BODY = 256 * 1024  # a token or probe answer is a few KB; error pages are cut here
_DROPPED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class UpstreamHttp:
    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        timeout: httpx.Timeout,
        *,
        deadline: float | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self._transport = transport
        self._extensions = {"timeout": timeout.as_dict()}
        self._deadline = deadline
        self._max_body = max_body
        self._urls: dict[str, httpx.URL] = {}  # a handful: token and probe URL per environment

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes | None = None
    ) -> httpx.Response:
        """Send one request and read its body, at most ``max_body`` bytes of it, within the
        deadline (``httpx.ReadTimeout`` when it passes)."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        request = httpx.Request(
            method, parsed, headers=headers, content=content, extensions=self._extensions
        )
        try:
            async with asyncio.timeout(self._deadline):
                return await self._exchange(request)
        except TimeoutError:
            raise httpx.ReadTimeout("no whole answer in time", request=request) from None

    async def _exchange(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        try:
            body = await self._read(response)
        finally:
            await response.aclose()  # unread rest: the connection is closed, not reused
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DROPPED]
        return httpx.Response(response.status_code, headers=headers, content=body, request=request)

    async def _read(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self._max_body:
                break
        return b"".join(chunks)[: self._max_body]

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return await self.request("POST", url, headers=headers, content=content)

    async def get(self, url: str, *, headers: Mapping[str, str]) -> httpx.Response:
        return await self.request("GET", url, headers=headers)

    async def aclose(self) -> None:
        await self._transport.aclose()
