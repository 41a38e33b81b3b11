"""One limit for every unauthenticated request body (docs/security.md, What is bounded).

A body has to be read before its signature can be checked, so anyone who can reach the
listener can make it buffer bytes. :class:`BodyBudget` bounds that for the whole process:
at most ``max_reads`` bodies are read at once and at most ``max_bytes`` are buffered
across them, counted as they arrive (a client that declares a large body and sends nothing
holds a read, not bytes; the listener's REQUEST_TIMEOUT ends it). Over the budget a request
is refused at once with **503** (``Retry-After: 1``) and its connection closed; a single
body over the route's own limit is refused with **413**; a body whose sender went away
before it was complete with **400**. Each refusal is one log line by the caller, never a
traceback.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

MAX_READS = 32
MAX_BYTES = 8 * 1024 * 1024
CHUNK = 64 * 1024


class BodyRefused(Exception):
    """Why a body was not read: the HTTP status and a short reason (no body content)."""

    def __init__(self, status: int, reason: str, size: int) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.size = size  # bytes declared or read when refused

    def response(self) -> web.Response:
        response = web.json_response({"error": self.reason}, status=self.status)
        if self.status == 503:
            response.headers["Retry-After"] = "1"
        response.force_close()  # the rest of the body is neither read nor waited for
        return response


class BodyBudget:
    """The process-wide budget for reading bodies that are not authenticated yet."""

    def __init__(self, max_reads: int | None = None, max_bytes: int | None = None) -> None:
        self.max_reads = MAX_READS if max_reads is None else max_reads
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self.reads = 0  # bodies being read now
        self.buffered = 0  # bytes reserved by them

    async def read(self, request: web.Request, limit: int) -> bytes:
        """The raw body of ``request`` (at most ``limit`` bytes), or :class:`BodyRefused`."""
        declared = request.content_length
        if declared is not None and declared > limit:
            raise BodyRefused(413, "body too large", declared)
        if self.reads >= self.max_reads:
            raise BodyRefused(503, "busy: too many request bodies being read", declared or 0)
        self.reads += 1
        held = 0
        try:
            body = bytearray()
            async for chunk in request.content.iter_chunked(CHUNK):
                body += chunk
                if len(body) > limit:
                    raise BodyRefused(413, "body too large", len(body))
                if len(body) > held:
                    held += self._take(len(body) - held, len(body))
            return bytes(body)
        except (HttpProcessingError, ConnectionError, asyncio.IncompleteReadError) as error:
            # the sender went away mid-body (aiohttp: ContentLengthError, ConnectionResetError)
            raise BodyRefused(400, "body incomplete: the client went away", held) from error
        finally:
            self.reads -= 1
            self.buffered -= held

    def _take(self, extra: int, size: int) -> int:
        if self.buffered + extra > self.max_bytes:
            raise BodyRefused(503, "busy: too many request bytes buffered", size)
        self.buffered += extra
        return extra
