"""Pure helpers of the simulator's HTTP side: fault answers, error bodies, credentials."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from bot.simulator.data import api_message_for_status, token_error_for_status
from bot.simulator.state import HUGE_BODY, TRICKLE_SECONDS, Fault


def fault_response(fault: Fault, service: str) -> web.Response:
    headers: dict[str, str] = {}
    if fault.mode == "answer":  # verbatim: odd values (Retry-After: inf, expires_in: "soon")
        return web.json_response(fault.body, status=fault.status or 200, headers=fault.headers)
    if fault.mode == "down":
        return web.Response(status=503, text="Service Unavailable")
    if fault.mode == "rate_limit":
        status = 429
        headers["Retry-After"] = str(fault.retry_after if fault.retry_after is not None else 1)
    elif fault.mode == "server_error":
        status = 500
    else:  # "status"
        status = fault.status or 500
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
    if service == "api":
        return web.json_response(
            {"message": api_message_for_status(status)}, status=status, headers=headers
        )
    body = {
        "error": "server_error" if fault.mode == "server_error" else token_error_for_status(status),
        "error_description": f"simulated HTTP {status}",
    }
    return web.json_response(body, status=status, headers=headers)


async def stream_fault(request: web.Request, fault: Fault) -> web.StreamResponse:
    """Modes "trickle" (one byte per TRICKLE_SECONDS) and "huge_body" (64 KB chunks), until
    ``size`` bytes are sent or the client leaves."""
    trickle = fault.mode == "trickle"
    size = fault.size or (4096 if trickle else HUGE_BODY)
    response = web.StreamResponse(
        status=fault.status or (200 if trickle else 500),
        headers={"Content-Type": "application/json" if trickle else "text/html"},
    )
    response.content_length = size
    await response.prepare(request)
    chunk = b" " if trickle else b"<p>error</p>".ljust(64 * 1024, b" ")
    sent = 0
    try:
        while sent < size:
            piece = chunk[: size - sent]
            await response.write(piece)
            sent += len(piece)
            if trickle:
                await asyncio.sleep(TRICKLE_SECONDS)
    except ConnectionError:  # the client gave up (what a bounded client does)
        pass
    return response


def api_status(status: int) -> web.Response:
    return web.json_response({"message": api_message_for_status(status)}, status=status)


def basic_credentials(header: str) -> tuple[str | None, str | None] | None:
    """client_secret_basic (RFC 6749 §2.3.1: both parts form-url-encoded); None if not Basic."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, sep, secret = decoded.partition(":")
    return (unquote_plus(client_id), unquote_plus(secret)) if sep else (None, None)


def claims_valid(claims: dict[str, Any], *, issuer: str, audience: str, now: float) -> bool:
    """Issuer, audience and validity window of a token whose signature was already checked."""
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    nbf, exp = claims.get("nbf"), claims.get("exp")
    return (
        claims.get("iss") == issuer
        and audience in audiences
        and isinstance(nbf, int | float)
        and isinstance(exp, int | float)
        and nbf <= now < exp
    )
