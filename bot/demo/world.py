"""The demo's world: the real :class:`~bot.runtime.Runtime` (Bolt app, services, scheduler,
outbox sender, check listeners, HTTP listener), with SQLite in a temporary directory, the
Visma/Brincr stand-in in-process, the demo's Slack Web API, and a few seeded customers.

Only the transports differ from ``serve``: settings are built here instead of read from the
environment (the operator's ``.env`` is ignored), and Slack is :class:`~bot.demo.slack.DemoSlack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.demo.pagerduty import PagerDutyStandIn
from bot.demo.printer import Clickable, Printer
from bot.demo.slack import POLL_SECONDS, Delivery, DemoSlack
from bot.demo.user import SlackUser
from bot.domain import Environment, State
from bot.onboarding.invitations import InviteForm, invite
from bot.runtime import Runtime
from bot.settings import Settings
from bot.simulator import Simulator
from storage.customers import NewCustomer, add_customer
from storage.facts import counts_by_state
from storage.migrate import upgrade

DEMO_USER = "U0DEMO"
ALERTS = "C0ALERTS"
SUPPORT = "C0SUPPORT"
CHANNELS = {ALERTS: "#alerts", SUPPORT: "#support"}
SCOPES = ("brincr:category", "brincr:country", "brincr:order")
NEW_SCOPE = "brincr:product"  # the app has started to ask for it: a scope rollout (#17)
REPLY_TIMEOUT = 10.0
DEMO_ROUTING_KEY = "demo0000000000000000000000000000"  # 32 characters, like PagerDuty's
QUIET_SECONDS = 0.4  # a command's replies are complete after this long without a new one


@dataclass(frozen=True)
class Seed:
    kvk: str
    name: str
    environment: Environment
    approved: tuple[str, ...]


HEALTHY = Seed(
    "12345678", "Bouwbedrijf De Vries B.V.", Environment.PRODUCTION, (*SCOPES, NEW_SCOPE)
)
MISSING = Seed("23456789", "Aannemersbedrijf Jansen", Environment.PRODUCTION, SCOPES[:2])
REVOKED = Seed("45678901", "Schildersbedrijf Visser", Environment.PRODUCTION, SCOPES)
REVOKED_SCOPE = "brincr:category"
SEEDS = (
    HEALTHY,
    MISSING,
    REVOKED,
    Seed("56789012", "Installatiebedrijf Bakker & Zn.", Environment.SANDBOX, (*SCOPES, NEW_SCOPE)),
    Seed("67890123", "Dakdekkers Smit", Environment.PRODUCTION, SCOPES),
)
INVITED = InviteForm(
    kvk="34567890", code="DEMO-7K2Q-X9PL", name="Timmerfabriek Noord",
    environment=Environment.PRODUCTION, language="en", contact="Jan Noord",
)  # fmt: skip


def demo_settings(
    database_url: str, sim: Simulator, slack: DemoSlack, **overrides: Any
) -> Settings:
    """Every setting at its default except those that point the bot at the demo's world."""
    values: dict[str, Any] = {name: f.default for name, f in Settings.model_fields.items()}
    values.update({k.lower(): v for k, v in sim.settings_env().items()})
    values.update(
        database_url=database_url, slack_bot_token="xoxb-demo-not-a-real-token",
        slack_signing_secret=secrets.token_hex(16), slack_app_token=None,
        slack_api_url=slack.api_url, alert_channel=ALERTS, bot_admins=(DEMO_USER,),
        brincr_scopes=SCOPES, brincr_rollout_scopes=(NEW_SCOPE,), host="127.0.0.1", port=0,
    )  # fmt: skip
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Demo:
    """Start it, seed it, talk to it through :attr:`user`, read :attr:`slack`'s deliveries,
    stop it.

    ``check_interval`` is CHECK_INTERVAL; ``revoke_after`` seconds after seeding the stand-in
    switches off ``brincr:category`` for :data:`REVOKED`, so a scheduled check alerts.
    """

    def __init__(
        self, printer: Printer, *, check_interval: str = "3s", revoke_after: float = 3.0
    ) -> None:
        self.printer = printer
        self.check_interval = check_interval
        self.revoke_after = revoke_after
        self.slack = DemoSlack(printer.show)
        self.sim = Simulator()
        self.pagerduty = PagerDutyStandIn(on_event=self._show_page)
        self._stack = contextlib.AsyncExitStack()
        self._runtime: Runtime | None = None
        self._user: SlackUser | None = None
        self.tenants: dict[str, str] = {}

    @property
    def runtime(self) -> Runtime:
        assert self._runtime is not None, "the demo has not been started"
        return self._runtime

    @property
    def user(self) -> SlackUser:
        assert self._user is not None, "the demo has not been started"
        return self._user

    async def start(self) -> None:
        """Everything up (no customers yet: :meth:`seed`). On failure, what was started is
        stopped again before the error propagates."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="brincr-demo-"))
        self._stack.callback(shutil.rmtree, folder, ignore_errors=True)
        database_url = f"sqlite:///{folder / 'demo.db'}"
        await asyncio.to_thread(upgrade, database_url)
        await self.sim.start("127.0.0.1", 0)
        self._stack.push_async_callback(self.sim.stop)
        await self.slack.start()
        self._stack.push_async_callback(self.slack.stop)
        await self.pagerduty.start()
        self._stack.push_async_callback(self.pagerduty.stop)
        settings = demo_settings(
            database_url, self.sim, self.slack, check_interval=self.check_interval,
            pagerduty_routing_key=DEMO_ROUTING_KEY, pagerduty_events_url=self.pagerduty.url,
        )  # fmt: skip
        self._runtime = Runtime(settings)
        await self._runtime.start()
        self._stack.push_async_callback(self._runtime.stop)
        self._user = SlackUser(
            f"http://127.0.0.1:{self._runtime.port}", _secret(settings), self.slack,
            user_id=DEMO_USER, channel_id=SUPPORT,
        )  # fmt: skip
        self._stack.push_async_callback(self._user.aclose)

    async def stop(self) -> None:
        """Stop everything that was started, newest first, and delete the temporary files."""
        await self._stack.aclose()

    async def seed(self) -> None:
        """The customers, the invitation (its hand-off is posted), and the revocation
        :attr:`revoke_after` seconds from now."""
        services = self.runtime.bot.services
        async with services.db.transaction() as session:
            for seed in SEEDS:
                tenant = self.tenants[seed.kvk] = str(uuid.uuid4())
                self.sim.approve(tenant, seed.environment.value, list(seed.approved))
                new = NewCustomer(seed.kvk, seed.name, seed.environment, tenant, DEMO_USER)
                await add_customer(new, session=session, state=State.PENDING)
        await invite(services, INVITED, invited_by=DEMO_USER, channel_id=SUPPORT)
        revoke = asyncio.get_running_loop().create_task(self._revoke_later())
        self._stack.callback(revoke.cancel)

    async def settle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait (at most ``timeout`` seconds in all) for what seeding causes: the hand-off in
        #support, the first checks' alert about :data:`MISSING`, and every seeded customer's
        first check, so "Ready. Try /brincr status" answers with a check in it (a scope
        missing at the token request alerts before the healthy checks' probes have ended)."""

        def startup(d: Delivery) -> bool:
            return d.where == "post" and (
                d.channel == SUPPORT or MISSING.name in str(d.payload.get("text", ""))
            )

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.slack.wait_for_deliveries(startup, timeout, count=2)
                # Nothing announces a recorded check outside its transaction: ask the database
                while await self._unchecked():  # noqa: ASYNC110
                    await asyncio.sleep(POLL_SECONDS)

    async def _unchecked(self) -> int:
        """How many customers still wait for their first check."""
        async with self.runtime.bot.services.db.transaction() as session:
            return (await counts_by_state(session=session)).get(State.PENDING.value, 0)

    def _show_page(self, event: dict[str, Any]) -> None:
        """What PagerDuty received (the demo's stand-in answers 202)."""
        summary = (event.get("payload") or {}).get("summary")
        what = f": {summary}" if summary else ""
        self.printer.line(f"(PagerDuty receives {event['event_action']}{what})")

    async def _revoke_later(self) -> None:
        await asyncio.sleep(self.revoke_after)
        self.sim.revoke(self.tenants[REVOKED.kvk], [REVOKED_SCOPE])
        self.printer.line()
        self.printer.line(
            f"(meanwhile, at Visma: {REVOKED.name} switches off {REVOKED_SCOPE} in the "
            "Visma App Store; the next scheduled check will notice)"
        )

    # --- talking to the bot ---------------------------------------------------------------

    async def command(self, text: str) -> list[Delivery]:
        """Send ``/brincr <text>`` and wait for its replies, or the form it opens (a modal is
        the whole answer to `/brincr invite`: no reply follows it)."""
        since = time.monotonic()
        key = await self.user.command(text)
        return await self._settle(lambda d: d.key == key or (d.where == "modal" and d.at >= since))

    async def click(self, button: Clickable) -> list[Delivery]:
        """Press ``button``; wait for what it causes: a reply to its response_url, the pressed
        message updated in place or answered in its thread, or a form. A message that only
        happens to follow the press (another alert) is shown, but is not the press's answer."""
        since = time.monotonic()
        key = await self.user.click(button)
        pressed = button.delivery.ts

        def caused(d: Delivery) -> bool:
            return d.at >= since and (
                d.key == key or d.ts == pressed or d.thread_ts == pressed or d.where == "modal"
            )

        return await self._settle(caused)

    async def _settle(self, predicate: Callable[[Delivery], bool]) -> list[Delivery]:
        """Waits for the first matching delivery, then until none follows for
        :data:`QUIET_SECONDS` (``check`` answers twice: "Checking…", then the result)."""
        found = await self.slack.wait_for_deliveries(predicate, REPLY_TIMEOUT)
        while True:
            with contextlib.suppress(TimeoutError):
                found = await self.slack.wait_for_deliveries(
                    predicate, QUIET_SECONDS, count=len(found) + 1
                )
                continue
            return found


def _secret(settings: Settings) -> str:
    assert settings.slack_signing_secret is not None
    return settings.slack_signing_secret.get_secret_value()
