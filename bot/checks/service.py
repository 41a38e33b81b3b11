"""The health check service: one check = one fresh token request + one probe, recorded.

Request cost per check (asserted in tests/checks/test_checks.py against the stand-in's counters):

- healthy: exactly 1 token request + 1 probe;
- token refused with ``invalid_scope``: Visma usually names the offending scopes in the
  error's ``scope`` member (0 extra requests). Without it, the missing scopes on record are
  reused while the customer still has some (0 extra), else each required scope
  is requested alone, in parallel: at most ``len(BRINCR_SCOPES)`` extra token requests, and
  only when the outcome changed (into scopes missing). A limit of the reuse: when Visma names
  no scope, a *different* scope switched off while another is still missing shows only once
  the customer has left scopes_missing;
- a token issued without some required scopes: no probe (it would only confirm a 403);
- other failures: no probe. ``Retry-After`` is honoured through ``next_check_at``.

Scope rollouts (``BRINCR_ROLLOUT_SCOPES``, docs/interface.md): a customer that has switched
the rollout scopes ON is asked for required + rollout scopes in its one token request (the
cost above). Visma refuses a whole request naming a scope the tenant has not switched ON
(``invalid_scope``, usually without naming it), so a customer known to lack a rollout scope
is asked for the required scopes only, and for the rollout scopes at most once per
``ROLLOUT_ASK_EVERY`` (and at once by a person's check): that check costs 1 extra token request
(the required-only retry after the refusal), plus one per rollout scope when several are
rolled out and Visma names none.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
from httpx_aiohttp import AiohttpTransport
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.checks.recording import CheckListener, record_outcome, record_outcomes
from bot.clients.brincr import probe
from bot.clients.upstream_http import UpstreamHttp
from bot.clients.visma import TokenClient, TokenResult
from bot.core.clock import utcnow
from bot.core.errors import UpstreamError
from bot.core.metrics import CHECK_LATENCY, checks_with
from bot.domain import Environment, State
from bot.domain.outcomes import CheckOutcome, TokenOutcome
from bot.settings import EnvironmentConfig, Settings
from storage.db import Database
from storage.scheduling import CheckSnapshot, check_snapshots

log = logging.getLogger(__name__)
BATCH = 100  # checks recorded per transaction: small, so no batch holds the loop long
ROLLOUT_ASK_EVERY = timedelta(hours=1)  # a customer lacking a rollout scope is asked this often

_TOKEN_STATES = {
    TokenOutcome.SCOPES: State.SCOPES_MISSING,
    TokenOutcome.TENANT_ACCESS: State.REVOKED,
    TokenOutcome.APP_CREDENTIALS: State.UNKNOWN,  # the app's own credentials: not the customer
    TokenOutcome.TRANSIENT: State.UNKNOWN,
    TokenOutcome.RATE_LIMITED: State.UNKNOWN,
    TokenOutcome.OTHER: State.FAILING,
}


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS settings (certifi's CAs, or SSL_CERT_FILE/SSL_CERT_DIR), made once
    per process: loading the CA bundle takes about 30 ms, and every Runtime (a test starts
    hundreds) makes a check client."""
    return httpx.create_ssl_context()


class CheckService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        listeners: Sequence[CheckListener] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.listeners = tuple(listeners)
        # CHECK_TIMEOUT bounds a whole check (token request, probe, every body): see run().
        self.deadline = settings.check_timeout.total_seconds()
        if timeout is None:  # per socket operation; connecting may take at most 5 s of it
            timeout = httpx.Timeout(self.deadline, connect=min(self.deadline, 5.0))
        # One pool for both environments' hosts, big enough that every check in flight
        # keeps its connection (the transport's own default is 100).
        limits = httpx.Limits(max_connections=settings.check_concurrency * 2)
        self._http = UpstreamHttp(
            transport or AiohttpTransport(verify=_tls(), limits=limits),
            timeout,
            deadline=self.deadline,
        )
        self._tokens = TokenClient(self._http)
        self._slots = asyncio.Semaphore(settings.check_concurrency)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def record(self, outcome: CheckOutcome) -> None:
        """Record an outcome that did not come from :meth:`run` (a webhook's revocation)
        exactly like a check: result, state, listeners."""
        await record_outcome(self.db, outcome, self.settings, self.listeners)

    async def check_customer(self, customer_id: int) -> CheckOutcome:
        """Check one customer now and record it (LookupError if it does not exist). A check
        asked for by a person also asks for the rollout scopes, however recently asked."""
        snapshot = (await self._snapshots([customer_id])).get(customer_id)
        if snapshot is None:
            raise LookupError(f"customer {customer_id} does not exist")
        outcome = await self.run(customer_id, snapshot, ask_rollout=True)
        await record_outcome(self.db, outcome, self.settings, self.listeners)
        return outcome

    async def tenant_grants(self, tenant_id: str, environment: str | None) -> str | None:
        """Whether the tenant grants our app a token (the confirmation of a webhook's
        "added"): the environment whose token request succeeded (scopes missing still counts:
        the app is approved), or None when every configured environment (``environment``
        only, when known) refused the tenant. One token request per environment tried.

        Raises a transient :class:`UpstreamError` when an answer was inconclusive (Visma
        down, rate limited, the app's own credentials refused): the caller tries later.
        """
        envs = self.settings.configured_environments()
        if environment is not None:
            envs = [env for env in envs if env.name.value == environment]
        inconclusive: str | None = None
        for env in envs:
            token = await self._tokens.fetch(env, tenant_id, self.settings.brincr_scopes)
            if token.outcome in (TokenOutcome.OK, TokenOutcome.SCOPES):
                return env.name.value
            if token.outcome is not TokenOutcome.TENANT_ACCESS:
                inconclusive = token.error_code or token.outcome.value
        if inconclusive is not None:
            raise UpstreamError(f"token request inconclusive: {inconclusive}", transient=True)
        return None

    async def check_many(
        self, customer_ids: Sequence[int], *, start_at: Mapping[int, float] | None = None
    ) -> list[CheckOutcome]:
        """Check customers concurrently (at most CHECK_CONCURRENCY at once); one writer
        records finished checks in batches, so the database never paces the network.
        ``start_at``: when (event-loop time) each check may start at the earliest, so the
        scheduler can spread a tick's checks over the tick (a flat load on Visma)."""
        snapshots = await self._snapshots(customer_ids)
        items = list(snapshots.items())
        if start_at is not None:
            items.sort(key=lambda item: start_at.get(item[0], 0.0))
        todo = iter(items)
        done: asyncio.Queue[CheckOutcome | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def worker() -> None:
            # CHECK_CONCURRENCY workers share one iterator: no task per customer waiting on
            # a semaphore (10,000 of those cost more event-loop time than the checks' I/O).
            # A worker holds one of the CHECK_CONCURRENCY slots shared by every check_many
            # under way, so sweeps that overlap (a slow check keeps one open) stay within it.
            async with self._slots:
                for customer_id, snapshot in todo:
                    if start_at is not None:  # not before its start (a negative sleep: none)
                        await asyncio.sleep(start_at.get(customer_id, 0.0) - loop.time())
                    await done.put(await self.run(customer_id, snapshot))

        writer = asyncio.create_task(self._writer(done))
        try:
            workers = min(self.settings.check_concurrency, len(snapshots))
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            await done.put(None)
            outcomes = await writer
        return outcomes

    async def _snapshots(self, customer_ids: Sequence[int]) -> dict[int, CheckSnapshot]:
        async with self.db.transaction() as session:
            return await check_snapshots(customer_ids, session=session)

    async def _writer(self, done: asyncio.Queue[CheckOutcome | None]) -> list[CheckOutcome]:
        """Record what is ready, up to BATCH per transaction, until the None sentinel."""
        recorded: list[CheckOutcome] = []
        while True:
            item = await done.get()
            batch: list[CheckOutcome] = []
            while item is not None:
                batch.append(item)
                if len(batch) >= BATCH or done.empty():
                    break
                item = done.get_nowait()
            if batch:
                recorded.extend(await self._record(batch))
                await asyncio.sleep(0)  # let Slack's requests in between two batches
            if item is None:
                return recorded

    async def _record(self, batch: list[CheckOutcome]) -> list[CheckOutcome]:
        """Record a batch; if that fails because of a row (not the database), each check
        alone, so one check that cannot be recorded never takes the others with it.
        Returns what was recorded; the sweep releases the claims of the rest."""
        try:
            await record_outcomes(self.db, batch, self.settings, self.listeners)
            return batch
        except (OperationalError, InterfaceError) as error:  # the database: retrying won't help
            log.error("recording %d checks failed (%s)", len(batch), type(error).__name__)
            return []
        except Exception as error:  # isolation: fall back to one transaction per check
            log.warning(
                "recording %d checks failed (%s): one by one", len(batch), type(error).__name__
            )
        recorded: list[CheckOutcome] = []
        failed = (0, "")
        for outcome in batch:
            try:
                await record_outcomes(self.db, [outcome], self.settings, self.listeners)
                recorded.append(outcome)
            except Exception as error:  # the claim is released by the sweep
                failed = (outcome.customer_id, type(error).__name__)
        if len(recorded) < len(batch):
            log.error(
                "%d of %d checks could not be recorded (customer %s: %s)",
                len(batch) - len(recorded), len(batch), *failed,
            )  # fmt: skip
        return recorded

    async def run(
        self, customer_id: int, snapshot: CheckSnapshot, *, ask_rollout: bool = False
    ) -> CheckOutcome:
        """One check without recording it, within CHECK_TIMEOUT; never raises: a deadline
        passed or anything unexpected becomes this customer's outcome, with the reason."""
        started = utcnow()
        environment = snapshot.environment
        try:
            async with asyncio.timeout(self.deadline):
                return await self._run(customer_id, snapshot, ask_rollout)
        except TimeoutError:
            outcome = self._cut_short(customer_id, started, environment)
        except Exception as error:  # isolation: one customer's surprise never stops the others
            log.exception("check of customer %s failed (%s)", customer_id, type(error).__name__)
            outcome = replace(
                self._cut_short(customer_id, started, environment),
                state=State.FAILING,
                token_outcome=TokenOutcome.OTHER,
                error_code="check_error",
                error_text=f"the check failed unexpectedly ({type(error).__name__})",
            )
        checks_with(outcome.state).inc()  # a finished check counts itself in _run
        return outcome

    def _cut_short(self, customer_id: int, started: datetime, environment: str) -> CheckOutcome:
        """The outcome of a check that ran out of time: Visma/Brincr trouble (unknown)."""
        return CheckOutcome(
            customer_id,
            started,
            State.UNKNOWN,
            TokenOutcome.TRANSIENT,
            self.settings.required_scopes(started),
            token_ms=int((utcnow() - started).total_seconds() * 1000),
            error_code="timeout",
            error_text=f"no whole answer within CHECK_TIMEOUT ({self.deadline:g}s)",
            details={"environment": environment},
        )

    async def _run(self, customer_id: int, snapshot: CheckSnapshot, force: bool) -> CheckOutcome:
        now = utcnow()
        environment, tenant_id = snapshot.environment, snapshot.tenant_id
        required = self.settings.required_scopes(now)
        rollout = self.settings.rollout_scopes(now)
        base = CheckOutcome(
            customer_id,
            now,
            State.UNKNOWN,
            TokenOutcome.NOT_CONFIGURED,
            required,
            details={"environment": environment},
            rollout_scopes=rollout,
        )
        env = self.settings.environment(environment)
        if env is None:
            return replace(
                base,
                error_code="not_configured",
                error_text=f"credentials not configured for {environment}",
            )
        if tenant_id is None:
            return replace(base, state=State.INVITED, error_code="no_tenant")
        # After the deadline, the rollout scopes a customer was known to lack are its
        # missing required scopes: no request spent finding them again.
        known = snapshot.missing_scopes.split() + snapshot.rollout_missing_scopes.split()
        last_missing = " ".join(s for s in dict.fromkeys(known) if s in required)
        with CHECK_LATENCY.time():
            if rollout and (force or _rollout_due(snapshot, rollout, now)):
                token, rollout_missing, extra = await self._with_rollout(
                    env, tenant_id, required, rollout
                )
            else:
                token, rollout_missing, extra = (
                    await self._tokens.fetch(env, tenant_id, required), None, 0
                )  # fmt: skip
            outcome = await self._after_token(base, env, tenant_id, token, last_missing)
        outcome = replace(
            outcome,
            rollout_missing=rollout_missing,
            extra_token_requests=outcome.extra_token_requests + extra,
        )
        checks_with(outcome.state).inc()
        return outcome

    async def _with_rollout(
        self,
        env: EnvironmentConfig,
        tenant_id: str,
        required: tuple[str, ...],
        rollout: tuple[str, ...],
    ) -> tuple[TokenResult, tuple[str, ...] | None, int]:
        """Ask for required + rollout scopes: the token to judge the required scopes by, the
        rollout scopes not switched ON (None: could not tell) and the extra requests spent."""
        token = await self._tokens.fetch(env, tenant_id, required + rollout)
        if token.outcome is TokenOutcome.OK:
            return token, tuple(s for s in rollout if s not in token.granted_scopes), 0
        if token.outcome is not TokenOutcome.SCOPES:
            return token, None, 0
        named = tuple(s for s in token.error_scopes if s in required + rollout)
        if named and any(s in required for s in named):
            return token, None, 0  # a required scope is refused: judged as without a rollout
        alone = await self._tokens.fetch(env, tenant_id, required)
        if alone.outcome is not TokenOutcome.OK:
            return alone, None, 1  # a required scope (or Visma) is the problem: judge that
        if named or len(rollout) == 1:
            return alone, (named or rollout), 1
        each = await asyncio.gather(
            *(self._tokens.fetch(env, tenant_id, (*required, scope)) for scope in rollout)
        )
        missing = tuple(
            s for s, r in zip(rollout, each, strict=True) if r.outcome is not TokenOutcome.OK
        )
        return alone, missing, 1 + len(rollout)

    async def _after_token(
        self,
        base: CheckOutcome,
        env: EnvironmentConfig,
        tenant_id: str,
        token: TokenResult,
        last_missing: str,
    ) -> CheckOutcome:
        outcome = replace(
            base,
            token_outcome=token.outcome,
            token_ms=token.elapsed_ms,
            error_code=token.error_code,
            error_text=token.error_text,
            retry_after=token.retry_after,
        )
        if token.outcome is TokenOutcome.SCOPES:
            missing, extra = await self._missing_scopes(
                env, tenant_id, token, last_missing, base.required_scopes
            )
            return replace(
                outcome,
                state=State.SCOPES_MISSING,
                missing_scopes=missing,
                granted_scopes=tuple(s for s in base.required_scopes if s not in missing),
                extra_token_requests=extra,
            )
        if token.outcome is not TokenOutcome.OK:
            return replace(outcome, state=_TOKEN_STATES[token.outcome])
        missing = tuple(s for s in base.required_scopes if s not in token.granted_scopes)
        outcome = replace(outcome, granted_scopes=token.granted_scopes, missing_scopes=missing)
        if missing:
            return replace(
                outcome,
                state=State.SCOPES_MISSING,
                token_outcome=TokenOutcome.SCOPES,
                error_code="scopes_not_granted",
            )
        assert token.access_token is not None
        result = await probe(
            self._http, env.api_url, self.settings.brincr_probe_path, token.access_token
        )
        return replace(
            outcome,
            state=result.state,
            probe_status=result.status,
            probe_ms=result.elapsed_ms,
            error_code=result.reason,
            error_text=result.text,
            retry_after=result.retry_after,
        )

    async def _missing_scopes(
        self,
        env: EnvironmentConfig,
        tenant_id: str,
        token: TokenResult,
        last_missing: str,
        required: tuple[str, ...],
    ) -> tuple[tuple[str, ...], int]:
        # Only a scope the app asked for can be missing: a name Visma gives that is not one
        # of them is upstream text, not a fact about this customer (docs/security.md).
        named = tuple(s for s in required if s in token.error_scopes)
        if named:
            return named, 0
        on_record = tuple(s for s in required if s in last_missing.split())
        if on_record:
            return on_record, 0
        alone = await asyncio.gather(
            *(self._tokens.fetch(env, tenant_id, (scope,)) for scope in required)
        )
        missing = tuple(
            s for s, r in zip(required, alone, strict=True) if r.outcome is not TokenOutcome.OK
        )
        return missing, len(required)


def _rollout_due(snapshot: CheckSnapshot, rollout: tuple[str, ...], now: datetime) -> bool:
    """Whether this check names the rollout scopes: always for a customer that has them
    switched ON (or was never asked), hourly for one known to lack one."""
    if not set(snapshot.rollout_missing_scopes.split()) & set(rollout):
        return True
    asked = snapshot.rollout_asked_at
    return asked is None or now - asked >= ROLLOUT_ASK_EVERY


def app_wide_problems(outcomes: Sequence[CheckOutcome]) -> list[str]:
    """One line per environment whose own app credentials were refused (not N customers)."""
    lines = []
    for env in Environment:
        hits = [
            o
            for o in outcomes
            if o.token_outcome is TokenOutcome.APP_CREDENTIALS
            and o.details.get("environment") == env.value
        ]
        if hits:
            lines.append(
                f"{env.value} app credentials refused by Visma Connect "
                f"({hits[0].error_code}): {hits[0].error_text or ''}".rstrip(": ")
            )
    return lines
