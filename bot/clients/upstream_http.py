"""HTTP for the health checks: httpx requests handed straight to the transport.

The checks send two requests per customer per interval and need none of what
``httpx.AsyncClient`` adds per request (base-URL and header merging, cookie extraction,
auth and redirect handling): measured, that machinery costs ~0.12 ms of CPU per request,
about a fifth of a check's CPU when a sweep runs 1,000 checks a second (docs/benchmarks.md).
Requests and responses are still httpx's, timeouts are passed the way AsyncClient passes
them (the ``timeout`` request extension), and the transport maps network errors to
``httpx.TimeoutException`` / ``httpx.TransportError`` as before.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx


class UpstreamHttp:
    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout) -> None:
        self._transport = transport
        self._extensions = {"timeout": timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}  # a handful: token and probe URL per environment

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes | None = None
    ) -> httpx.Response:
        """Send one request and read its whole body (then the connection is free again)."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        request = httpx.Request(
            method, parsed, headers=headers, content=content, extensions=self._extensions
        )
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return await self.request("POST", url, headers=headers, content=content)

    async def get(self, url: str, *, headers: Mapping[str, str]) -> httpx.Response:
        return await self.request("GET", url, headers=headers)

    async def aclose(self) -> None:
        await self._transport.aclose()
