"""Maintenance windows: planned downtime of an environment, stored in the database so every
replica honours it.

While a window lasts, checks still run and are recorded, but no incident opens for that
environment (customer, upstream or group) and so nobody is paged; incidents already open
go on as before. Start and end are announced in the environment's alert channel. The end is
claimed with a conditional UPDATE on ``end_announced_at`` (one replica announces it), and the
environment's broken customers are checked again at once, so those still broken alert
normally, once, through the usual incident path.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts.render_maintenance import (
    WindowView,
    render_maintenance_end,
    render_maintenance_start,
)
from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain import Environment, State
from bot.outbox import enqueue
from bot.services import Services
from storage import audit, maintenance
from storage.models import MaintenanceWindow

log = logging.getLogger(__name__)
MAX_WINDOW = timedelta(days=7)
TICK = timedelta(seconds=30)
USAGE = (
    "`/brincr maintenance <production|sandbox|all> <duration> [reason]`, e.g. "
    "`/brincr maintenance production 2h Visma upgrade`; `/brincr maintenance end <environment|all>`"
)


def parse_target(text: str) -> tuple[Environment, ...]:
    """``production``, ``sandbox`` or ``all`` → the environments a command is about."""
    word = text.strip().lower()
    if word == "all":
        return tuple(Environment)
    try:
        return (Environment(word),)
    except ValueError:
        raise UserError(f"`{word[:30]}` is not an environment", usage=USAGE) from None


async def in_maintenance(session: AsyncSession, environment: str, now: datetime) -> bool:
    """True while a maintenance window of ``environment`` lasts."""
    return await maintenance.in_maintenance(environment, now, session=session)


class Maintenance:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    async def begin(
        self, environments: tuple[Environment, ...], duration: timedelta, reason: str | None,
        user_id: str,
    ) -> datetime:  # fmt: skip
        """Open (or extend) a window for each environment now; announce it. Returns its end."""
        if duration > MAX_WINDOW:
            raise UserError("A maintenance window lasts at most 7 days.", usage=USAGE)
        now = utcnow()
        until = now + duration
        async with self.services.db.transaction() as session:
            for env in environments:
                await self._open_or_extend(session, env, now, until, reason, user_id)
            for channel, envs in self._by_channel(environments).items():
                message = render_maintenance_start(envs, until, reason, user_id)
                await enqueue(
                    session, kind="post", channel_id=channel, text=message.text,
                    blocks=message.block_dicts(),
                )  # fmt: skip
            detail = f"{','.join(environments)} until {until.isoformat()}"
            audit.record(session, user_id=user_id, action="maintenance", detail=detail)
        log.info("maintenance for %s until %s by %s", ",".join(environments), until, user_id)
        return until

    async def _open_or_extend(
        self, session: AsyncSession, env: Environment, now: datetime, until: datetime,
        reason: str | None, user_id: str,
    ) -> None:  # fmt: skip
        current = await maintenance.active_window(env, now, session=session)
        if current is not None:
            current.ends_at, current.reason = until, reason or current.reason
            return
        session.add(
            MaintenanceWindow(
                environment=env.value, starts_at=now, ends_at=until, reason=reason,
                created_by=user_id,
            )
        )  # fmt: skip

    def _by_channel(self, environments: tuple[Environment, ...]) -> dict[str, list[str]]:
        channels: dict[str, list[str]] = defaultdict(list)
        for env in environments:
            channels[self.settings.alert_channel_for(env)].append(env.value)
        return channels

    async def end(self, environments: tuple[Environment, ...], user_id: str) -> int:
        """End the environments' windows now (announced once); how many were ended."""
        now = utcnow()
        async with self.services.db.transaction() as session:
            await maintenance.end_now(environments, now, user_id, session=session)
            ended = await self._announce_ended(session, now)
            if ended:
                audit.record(session, user_id=user_id, action="maintenance-end",
                             detail=",".join(environments))  # fmt: skip
        return ended

    async def announce_ends(self, now: datetime) -> int:
        """The scheduler's tick: announce windows that ran out (each once, any replica)."""
        async with self.services.db.transaction() as session:
            return await self._announce_ended(session, now)

    async def _announce_ended(self, session: AsyncSession, now: datetime) -> int:
        claimed = await maintenance.claim_ended(now, session=session)
        for window in claimed:
            await self._recheck_broken(session, window.environment, now)
            channel = self.settings.alert_channel_for(window.environment)
            message = render_maintenance_end(window.environment, window.ended_by)
            await enqueue(
                session, kind="post", channel_id=channel, text=message.text,
                blocks=message.block_dicts(),
            )  # fmt: skip
            log.info("maintenance for %s ended", window.environment)
        return len(claimed)

    async def _recheck_broken(self, session: AsyncSession, environment: str, now: datetime) -> None:
        """Customers still broken are checked at the next sweep, and alert then."""
        broken = [s.value for s in (State.SCOPES_MISSING, State.REVOKED, State.FAILING,
                                    State.UNKNOWN)]  # fmt: skip
        await maintenance.due_now(environment, broken, now, session=session)

    async def windows(self) -> list[WindowView]:
        """Windows that last now, soonest end first."""
        now = utcnow()
        async with self.services.db.transaction() as session:
            rows = await maintenance.active_windows(now, session=session)
            return [
                WindowView(w.environment, w.starts_at, w.ends_at, w.reason, w.created_by)
                for w in rows
            ]
