"""The :class:`Simulator`: Visma Connect and the Brincr API, both environments, on one port.

Routes (``{env}`` is ``production`` or ``sandbox``)::

    POST /{env}/connect/token                    client credentials, Visma Connect style
    GET  /{env}/.well-known/openid-configuration discovery
    GET  /{env}/.well-known/jwks                 the signing key
    GET  /{env}/api/v1/{path}                    the Brincr API (sample data)
    *    /_control/...                           the control API (see bot.simulator.control)

Token signing is the costly step (~1 ms of RSA-2048 per token): signed tokens are cached per
(environment, tenant, scope set) for at most the current wall-clock second
(:class:`~bot.simulator.signing.TokenMinter`). Every control call that changes apps or
tenants drops that cache, so a revocation, removal or new secret is seen by the very next
token request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.simulator.control import control_routes
from bot.simulator.data import RESOURCE_SCOPES, SAMPLE_DATA, resource_of
from bot.simulator.responses import (
    api_status,
    basic_credentials,
    claims_valid,
    fault_response,
    stream_fault,
)
from bot.simulator.signing import Signer, TokenMinter
from bot.simulator.state import ENVIRONMENTS, Counters, TokenError
from bot.simulator.webhooks import TENANT_ADDED, TENANT_DELETED, WebhookSender
from bot.simulator.world import World

logger = logging.getLogger(__name__)

ENV_PATTERN = "{env:" + "|".join(ENVIRONMENTS) + "}"
HANG_SECONDS = 60.0  # fault "timeout": how long a request hangs unless the client gives up
SHUTDOWN_TIMEOUT = 2.0


class Simulator:
    """A local stand-in for Visma Connect and the Brincr API over real HTTP.

    ``latency`` is added to every token and API request; ``fault(latency=…)`` adds more for
    one environment and service. With ``webhook_url``, a tenant's first approval and the
    app's removal are delivered there as Visma Webhook Dispatcher events.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        application_id: str = "sim-app",
    ) -> None:
        self.latency = latency
        self.counters = Counters()
        self._world = World()
        self._tokens = TokenMinter(Signer())
        self._webhooks = (
            WebhookSender(webhook_url, webhook_secret, application_id) if webhook_url else None
        )
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._url: str | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        app = web.Application()
        app.add_routes(self._routes())
        app.add_routes(control_routes(self))
        # handler_cancellation: a request hanging in fault "timeout" ends when its client leaves.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=1024)
        await site.start()
        self._runner = runner
        self._closing.clear()
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"http://{_url_host(bound_host)}:{bound_port}"
        logger.info("simulator listening on %s", self._url)

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._closing.set()
        if self._webhooks is not None:
            await self._webhooks.close()
        await self._runner.cleanup()
        self._runner = None
        logger.info("simulator on %s stopped", self._url)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def flush_webhooks(self) -> None:
        """Wait until the webhook deliveries under way are done (delivered or failed)."""
        if self._webhooks is not None:
            await self._webhooks.flush()

    # --- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash); valid after :meth:`start`."""
        if self._url is None:
            raise RuntimeError("the simulator has not been started")
        return self._url

    def issuer(self, env: str) -> str:
        return f"{self.url}/{env}"

    def token_url(self, env: str) -> str:
        return f"{self.url}/{env}/connect/token"

    def api_url(self, env: str) -> str:
        return f"{self.url}/{env}/api/v1/"

    def settings_env(self) -> dict[str, str]:
        """Environment variables that point the bot at this simulator (both environments)."""
        result: dict[str, str] = {}
        for env in ENVIRONMENTS:
            app, prefix = self._world.apps[env], env.upper()
            result[f"{prefix}_CLIENT_ID"] = app.client_id
            result[f"{prefix}_CLIENT_SECRET"] = app.client_secret
            result[f"{prefix}_TOKEN_URL"] = self.token_url(env)
            result[f"{prefix}_API_URL"] = self.api_url(env)
        return result

    # --- control -------------------------------------------------------------------------

    def set_app(
        self,
        env: str,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: list[str] | None = None,
        expires_in: int | None = None,
    ) -> None:
        self._world.set_app(
            env,
            client_id=client_id,
            client_secret=client_secret,
            scopes=scopes,
            expires_in=expires_in,
        )
        self._tokens.clear()

    def approve(self, tenant_id: str, env: str, scopes: list[str]) -> None:
        """The tenant approved the app with exactly these scopes (replaces any earlier grant)."""
        added = self._world.approve(tenant_id, env, scopes)
        self._tokens.clear()
        if added and self._webhooks is not None:
            self._webhooks.send(TENANT_ADDED, tenant_id, env)

    def revoke(self, tenant_id: str, scopes: list[str]) -> None:
        """The tenant switched these scopes off."""
        self._world.revoke(tenant_id, scopes)
        self._tokens.clear()

    def remove(self, tenant_id: str) -> None:
        """The customer removed the app from the tenant."""
        tenant = self._world.remove(tenant_id)
        self._tokens.clear()
        if tenant is not None and self._webhooks is not None:
            self._webhooks.send(TENANT_DELETED, tenant_id, tenant.environment)

    def fault(
        self,
        env: str,
        service: str,
        mode: str | None,
        *,
        latency: float | None = None,
        retry_after: int | None = None,
        tenant_id: str | None = None,
        status: int | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        size: int | None = None,
    ) -> None:
        """Make ``service`` ("token"/"api") of ``env`` misbehave; ``mode=None`` clears it.

        With ``tenant_id`` only that tenant's requests are affected (its own fault wins over
        the environment's). ``latency`` (seconds) is added to the constructor's latency, and
        a tenant's to the environment's; None leaves it as it was, 0 removes it.
        """
        self._world.set_fault(
            env,
            service,
            mode,
            latency=latency,
            retry_after=retry_after,
            tenant_id=tenant_id,
            status=status,
            body=body,
            headers=headers,
            size=size,
        )

    def set_options(
        self,
        *,
        name_scope_in_error: bool | None = None,
        partial_scopes: str | None = None,
        invalid_client_status: int | None = None,
        unknown_tenant_error: str | None = None,
    ) -> None:
        self._world.set_options(
            name_scope_in_error=name_scope_in_error,
            partial_scopes=partial_scopes,
            invalid_client_status=invalid_client_status,
            unknown_tenant_error=unknown_tenant_error,
        )

    def reset(self) -> None:
        """Default apps and options, no tenants, no faults, counters zero."""
        self._world.reset()
        self._tokens.clear()
        self.counters.reset()

    def state(self) -> dict[str, Any]:
        """Apps (no secrets), tenants, faults, options and counters as JSON-ready data."""
        return {
            "url": self._url,
            "latency": self.latency,
            **self._world.snapshot(),
            "counters": self.counters.as_dict(),
        }

    # --- HTTP ----------------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"/{ENV_PATTERN}/connect/token", self._token),
            web.get(f"/{ENV_PATTERN}/.well-known/openid-configuration", self._discovery),
            web.get(f"/{ENV_PATTERN}/.well-known/jwks", self._jwks),
            web.get(f"/{ENV_PATTERN}/api/v1/{{path:.*}}", self._api),
        ]

    async def _discovery(self, request: web.Request) -> web.Response:
        env = request.match_info["env"]
        return web.json_response(
            {
                "issuer": self.issuer(env),
                "token_endpoint": self.token_url(env),
                "jwks_uri": f"{self.issuer(env)}/.well-known/jwks",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "client_secret_basic",
                ],
                "scopes_supported": self._world.apps[env].scopes,
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self._tokens.signer.jwk()]})

    async def _token(self, request: web.Request) -> web.StreamResponse:
        env = request.match_info["env"]
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        tenant_id = fields.get("tenant_id") or None
        self.counters.record("token", env, tenant_id)
        trouble = await self._misbehave(request, env, "token", tenant_id)
        if trouble is not None:
            return trouble
        client_id, client_secret = fields.get("client_id"), fields.get("client_secret")
        basic = basic_credentials(request.headers.get("Authorization", ""))
        if basic is not None:
            client_id, client_secret = basic
        try:
            grant = self._world.authorize_token(
                env,
                client_id=client_id,
                client_secret=client_secret,
                tenant_id=tenant_id,
                grant_type=fields.get("grant_type"),
                scope=fields.get("scope"),
            )
        except TokenError as error:
            logger.debug("simulator: %s token for %s refused: %s", env, tenant_id, error)
            return web.json_response(error.body(), status=error.status)
        token = await self._tokens.token(grant, self.issuer(env), self.api_url(env))
        return web.json_response(
            {
                "access_token": token,
                "expires_in": grant.expires_in,
                "token_type": "Bearer",
                "scope": " ".join(grant.scopes),
            }
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        env = request.match_info["env"]
        claims = self._bearer_claims(request)
        tenant = claims.get("tenant_id") if claims else None
        tenant_id = tenant if isinstance(tenant, str) else None
        self.counters.record("api", env, tenant_id)
        trouble = await self._misbehave(request, env, "api", tenant_id)
        if trouble is not None:
            return trouble
        if claims is None or tenant_id is None or not self._token_valid(env, claims, tenant_id):
            return api_status(401)
        resource = resource_of(request.match_info["path"])
        needed = RESOURCE_SCOPES.get(resource)
        scopes = claims.get("scope", [])
        granted = scopes.split() if isinstance(scopes, str) else scopes
        if needed is not None and needed not in granted:
            return api_status(403)
        return web.json_response({"data": SAMPLE_DATA.get(resource, [])})

    def _bearer_claims(self, request: web.Request) -> dict[str, Any] | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self._tokens.signer.verify(token.strip())

    def _token_valid(self, env: str, claims: dict[str, Any], tenant_id: str) -> bool:
        issuer, audience = self.issuer(env), self.api_url(env)
        return claims_valid(
            claims, issuer=issuer, audience=audience, now=time.time()
        ) and self._world.tenant_active(tenant_id, env)  # Brincr: invalid tenant = 401

    async def _misbehave(
        self, request: web.Request, env: str, service: str, tenant_id: str | None
    ) -> web.StreamResponse | None:
        """Sleep the added latency, then the fault's answer, or None to answer normally."""
        fault, extra = self._world.fault_for(env, service, tenant_id)
        delay = self.latency + extra
        if delay > 0:
            await asyncio.sleep(delay)
        if fault is None:
            return None
        logger.debug("simulator: %s %s fault %s for %s", env, service, fault.mode, tenant_id)
        if fault.mode == "timeout":
            return await self._hang()
        if fault.mode in ("trickle", "huge_body"):
            return await stream_fault(request, fault)
        return fault_response(fault, service)

    async def _hang(self) -> web.Response:
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=HANG_SECONDS)
        except TimeoutError:
            return web.Response(status=504, text="Gateway Timeout")
        return web.Response(status=503, text="Service Unavailable")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
