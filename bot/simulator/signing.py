"""RS256 JSON Web Tokens for the simulator, built on ``cryptography`` alone.

The RSA key is generated once per process (not per :class:`~bot.simulator.Simulator`):
generating a 2048-bit key takes 0.1-0.5 s, which would make every test that starts a
simulator slow. Tokens still never cross simulators: each checks ``iss`` and ``aud``, and
those carry the simulator's own port.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import time
import uuid
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bot.simulator.state import Grant


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


@functools.cache
def process_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Signer:
    """Signs claims into a compact JWT and checks signatures of tokens it made."""

    def __init__(self, key: rsa.RSAPrivateKey | None = None) -> None:
        self._key = key or process_key()
        self._public = self._key.public_key()
        numbers = self._public.public_numbers()
        self._jwk = {
            "kty": "RSA",
            "e": b64url(_int_bytes(numbers.e)),
            "n": b64url(_int_bytes(numbers.n)),
        }
        # RFC 7638 thumbprint: members in lexicographic order, no whitespace.
        canonical = json.dumps(self._jwk, sort_keys=True, separators=(",", ":")).encode()
        self.kid = b64url(hashlib.sha256(canonical).digest())
        header = {"alg": "RS256", "kid": self.kid, "typ": "at+jwt"}
        self._header = b64url(json.dumps(header, separators=(",", ":")).encode())

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK, as served on ``jwks_uri``."""
        return {**self._jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict[str, Any]) -> str:
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{self._header}.{payload}".encode("ascii")
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{self._header}.{payload}.{b64url(signature)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims if ``token`` carries this key's valid signature, else None.

        Expiry, issuer and audience are the caller's business.
        """
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(b64url_decode(parts[0]))
            if not isinstance(header, dict) or header.get("alg") != "RS256":
                return None
            signature = b64url_decode(parts[2])
            signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
            self._public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(b64url_decode(parts[1]))
        except (ValueError, InvalidSignature, UnicodeError):
            return None
        return claims if isinstance(claims, dict) else None


class TokenMinter:
    """Access tokens for grants, each signed once per (environment, tenant, scope set) and
    wall-clock second.

    Signing costs ~1 ms of RSA-2048, so it runs in the loop's default thread pool (OpenSSL
    releases the GIL: the event loop keeps serving meanwhile, and several cores sign at
    once). Under a burst of identical requests the token signed first in the current second
    is handed out again (requests that arrive while it is being signed wait for it), so
    ``iat``/``exp`` stay exact and a cached token is never older than 1 s. :meth:`clear`
    must follow every change of apps or tenants: a revocation or removal is then seen by
    the very next request.
    """

    def __init__(self, signer: Signer) -> None:
        self.signer = signer
        self._cache: dict[tuple[str, str, frozenset[str]], str] = {}
        self._pending: dict[tuple[str, str, frozenset[str]], asyncio.Future[str]] = {}
        self._second = 0
        self._generation = 0

    def clear(self) -> None:
        self._cache.clear()
        self._pending.clear()
        self._generation += 1

    async def token(self, grant: Grant, issuer: str, audience: str) -> str:
        now = int(time.time())
        if now != self._second:
            self.clear()
            self._second = now
        key = (grant.environment, grant.tenant_id, frozenset(grant.scopes))
        token = self._cache.get(key)
        if token is not None:
            return token
        pending = self._pending.get(key)
        if pending is None:
            claims = {
                "iss": issuer,
                "aud": [audience],
                "client_id": grant.client_id,
                "scope": list(grant.scopes),
                "tenant_id": grant.tenant_id,
                "nbf": now,
                "iat": now,
                "exp": now + grant.expires_in,
                "jti": uuid.uuid4().hex,
            }
            loop = asyncio.get_running_loop()
            pending = self._pending[key] = loop.run_in_executor(None, self.signer.sign, claims)
            pending.add_done_callback(functools.partial(self._signed, key, self._generation))
        # shield: one waiter given up (client gone) must not cancel the others' token
        return await asyncio.shield(pending)

    def _signed(
        self, key: tuple[str, str, frozenset[str]], generation: int, future: asyncio.Future[str]
    ) -> None:
        if self._pending.get(key) is future:
            del self._pending[key]
        if generation == self._generation and not future.cancelled() and not future.exception():
            self._cache[key] = future.result()
