"""Scope rollouts (``BRINCR_ROLLOUT_SCOPES``, ``BRINCR_ROLLOUT_DEADLINE``; docs/domain.md §8):
the app has started to request new scopes and every customer must switch them ON in the
Visma App Store. Tracked, never alerted: a customer lacking only rollout scopes stays
``healthy``; from the deadline on the scopes count as required (bot.settings).

- :meth:`Rollout.on_check` (a check listener, in the recording transaction): keeps each
  customer's ``rollout_missing_scopes``; a switch ON is noted in the customer's history and
  the tracker's thread, a switch OFF again in the thread (no incident).
- :meth:`Rollout.tracker_tick` (a scheduled job): one tracker message per environment in
  ``ONBOARDING_CHANNEL``, posted once across replicas and restarts (a ``kv`` claim and the
  outbox row in one transaction), updated in place when the count changes, reminders in its
  thread 7 days and 1 day before the deadline, a final note when everyone switched the scopes
  ON, the deadline came, or the scopes left the rollout. Every change is a conditional
  UPDATE of the tracker's ``kv`` row, so two replicas never post it twice.
- :meth:`Rollout.view` (``/brincr rollout``) and :meth:`Rollout.remind` (``rollout remind``:
  one DM per account manager per day, audited).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.core.errors import UserError
from bot.domain.outcomes import CheckOutcome
from bot.onboarding.render_rollout import (
    render_remind_dm,
    render_switch_note,
    render_tracker,
    render_tracker_note,
)
from bot.onboarding.rollout_data import Progress, RemindReport, RolloutView
from bot.outbox import enqueue
from bot.services import Services
from storage import audit
from storage.models import Customer, KeyValue
from storage.reporting import claim_key
from storage.rollouts import (
    TRACKER_PREFIX,
    Standing,
    TrackerRecord,
    lacking,
    replace_tracker,
    standings,
    tracker_value,
    trackers,
)

log = logging.getLogger(__name__)
TICK = timedelta(seconds=30)  # the tracker job; counts show within a check interval
REMINDERS = (("7d", 7), ("1d", 1))  # reminders in the tracker's thread, days before deadline
NOT_RUNNING = "set `BRINCR_ROLLOUT_SCOPES` to the new scopes the app requests"


def tracker_key(environment: str, scopes: tuple[str, ...]) -> str:
    digest = hashlib.sha256(" ".join(sorted(scopes)).encode()).hexdigest()[:16]
    return f"{TRACKER_PREFIX}{environment}:{digest}"


def _is_slack_user(manager: str | None) -> bool:
    return manager is not None and manager[:1] in ("U", "W") and manager.isalnum()


def _progress(customers: list[Standing], scopes: tuple[str, ...]) -> list[Progress]:
    by_env: dict[str, list[Standing]] = defaultdict(list)
    for customer in customers:
        by_env[customer.environment].append(customer)
    return [Progress(env, scopes, found) for env, found in sorted(by_env.items())]


class Rollout:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings

    # --- recording (a check listener) -------------------------------------------------

    async def on_check(
        self, session: AsyncSession, customer: Customer, outcome: CheckOutcome, _previous: str
    ) -> None:
        if not self.settings.brincr_rollout_scopes:
            customer.rollout_missing_scopes = ""  # no rollout (any more): nothing to track
            return
        if outcome.rollout_missing is None:
            return  # not asked this time: what is on record stands
        rollout = outcome.rollout_scopes
        before = set(customer.rollout_missing_scopes.split())
        asked_before = customer.rollout_asked_at is not None
        customer.rollout_missing_scopes = " ".join(outcome.rollout_missing)
        customer.rollout_asked_at = outcome.checked_at
        if not asked_before:
            return  # the first answer: a standing, not a switch
        on = tuple(s for s in rollout if s in before and s not in outcome.rollout_missing)
        off = tuple(s for s in outcome.rollout_missing if s not in before)
        for scopes, action in ((on, "rollout-on"), (off, "rollout-off")):
            if scopes:
                audit.record(session, user_id="visma", action=action, target=customer.kvk,
                             detail=" ".join(scopes))  # fmt: skip
                await self._note(
                    session, customer, rollout, scopes, switched_on=action == "rollout-on"
                )

    async def _note(
        self,
        session: AsyncSession,
        customer: Customer,
        rollout: tuple[str, ...],
        scopes: tuple[str, ...],
        *,
        switched_on: bool,
    ) -> None:
        """A note in the thread of the environment's tracker, when there is one."""
        row = await session.get(KeyValue, tracker_key(customer.environment, rollout))
        channel = self.settings.onboarding_channel_id
        record = json.loads(row.value or "{}") if row is not None else {}
        target = int(record.get("notification_id") or 0)
        if channel is None or not target or record.get("final"):
            return
        message = render_switch_note(customer, scopes, switched_on=switched_on)
        await enqueue(session, kind="reply", channel_id=channel, text=message.text,
                      blocks=message.block_dicts(), target_id=target)  # fmt: skip
        self.services.wake_outbox()

    # --- reading ----------------------------------------------------------------------

    async def view(self, now: datetime | None = None) -> RolloutView:
        """The rollout's progress per environment (UserError when no rollout runs)."""
        now = now or utcnow()
        scopes = self.settings.brincr_rollout_scopes
        if not scopes:
            raise UserError("No scope rollout is running.", usage=NOT_RUNNING)
        async with self.services.db.transaction() as session:
            customers = await standings(scopes, session=session)
        return RolloutView(
            scopes,
            self.settings.brincr_rollout_deadline,
            self.settings.rollout_enforced(now),
            _progress(customers, scopes),
        )

    # --- the tracker (a scheduled job) ---------------------------------------------------

    async def tracker_tick(self, now: datetime | None = None) -> int:
        """Post, update, remind and finish tracker messages; returns the messages enqueued."""
        now = now or utcnow()
        channel = self.settings.onboarding_channel_id
        if channel is None:
            return 0
        sent = 0
        async with self.services.db.transaction() as session:
            records = {r.key: r for r in await trackers(session=session)}
            scopes = self.settings.brincr_rollout_scopes
            read: dict[tuple[str, ...], list[Standing]] = {}  # one read per scopes a tick

            async def standings_of(wanted: tuple[str, ...]) -> list[Standing]:
                if wanted not in read:
                    read[wanted] = await standings(wanted, session=session)
                return read[wanted]

            if scopes and not self.settings.rollout_enforced(now):
                for progress in _progress(await standings_of(scopes), scopes):
                    key = tracker_key(progress.environment, scopes)
                    if key not in records:
                        sent += await self._post(session, key, progress, channel, now)
            for record in records.values():
                if not record.final:
                    everyone = await standings_of(record.scopes)
                    sent += await self._advance(session, record, everyone, channel, now)
        if sent:
            self.services.wake_outbox()
        return sent

    async def _post(
        self, session: AsyncSession, key: str, progress: Progress, channel: str, now: datetime
    ) -> int:
        """The environment's tracker message, by the one replica whose claim succeeds."""
        value = tracker_value(progress.environment, progress.scopes, 0, progress.shown)
        if not await claim_key(key, value, session=session, now=now):
            return 0
        message = render_tracker(progress, self.settings.brincr_rollout_deadline, self.settings.tz)
        row = await enqueue(session, kind="post", channel_id=channel, text=message.text,
                            blocks=message.block_dicts())  # fmt: skip
        stored = await session.get(KeyValue, key)
        assert stored is not None
        stored.value = tracker_value(progress.environment, progress.scopes, row.id, progress.shown)
        log.info("rollout tracker posted for %s (%s)", progress.environment, progress.shown)
        return 1

    async def _advance(
        self,
        session: AsyncSession,
        record: TrackerRecord,
        everyone: list[Standing],
        channel: str,
        now: datetime,
    ) -> int:
        """Bring one tracker up to date from ``everyone``'s standing in its scopes: one
        conditional UPDATE of its record, then the messages that change calls for (none when
        another replica got there first)."""
        customers = [c for c in everyone if c.environment == record.environment]
        progress = Progress(record.environment, record.scopes, customers)
        ending = self._ending(record, progress, now)
        reminder = None if ending else self._reminder_due(record, now)
        if ending is None and reminder is None and progress.shown == record.shown:
            return 0
        reminded = record.reminded + ((reminder[0],) if reminder else ())
        new = record.with_(shown=progress.shown, reminded=reminded, final=ending is not None)
        if not await replace_tracker(record, new, session=session, now=now):
            return 0
        deadline = self.settings.brincr_rollout_deadline if not ending else None
        message = render_tracker(progress, deadline, self.settings.tz, ending=ending)
        notes = []
        if ending or reminder:
            note = render_tracker_note(
                progress,
                ending=ending,
                days_left=reminder[1] if reminder else None,
                deadline=self.settings.brincr_rollout_deadline,
                tz=self.settings.tz,
            )
            notes.append(note)
        await enqueue(session, kind="update", channel_id=channel, text=message.text,
                      blocks=message.block_dicts(), target_id=record.notification_id)  # fmt: skip
        for note in notes:
            await enqueue(session, kind="reply", channel_id=channel, text=note.text,
                          blocks=note.block_dicts(), target_id=record.notification_id)  # fmt: skip
        return 1 + len(notes)

    def _ending(self, record: TrackerRecord, progress: Progress, now: datetime) -> str | None:
        """Why the tracker is done, or None while the rollout runs."""
        current = self.settings.brincr_rollout_scopes
        if not set(record.scopes) <= set(current):
            required = set(self.settings.brincr_scopes)
            return "required" if set(record.scopes) <= required else "stopped"
        if self.settings.rollout_enforced(now):
            return "deadline"
        if progress.total and progress.switched == progress.total:
            return "everyone"
        return None

    def _reminder_due(self, record: TrackerRecord, now: datetime) -> tuple[str, int] | None:
        deadline = self.settings.brincr_rollout_deadline
        if deadline is None or set(record.scopes) != set(self.settings.brincr_rollout_scopes):
            return None
        days_left = (deadline - now.astimezone(self.settings.tz).date()).days
        for mark, days in reversed(REMINDERS):  # the nearest first: 1 d, then 7 d
            if days_left <= days:
                if mark in record.reminded:
                    return None
                return mark, days_left
        return None

    # --- reminding account managers ------------------------------------------------------

    async def remind(self, user_id: str, now: datetime | None = None) -> RemindReport:
        """One DM per account manager listing their customers that have not switched the
        rollout scopes ON, at most one per account manager per day (``TIMEZONE``); audited."""
        now = now or utcnow()
        scopes = self.settings.brincr_rollout_scopes
        if not scopes:
            raise UserError("No scope rollout is running.", usage=NOT_RUNNING)
        today = now.astimezone(self.settings.tz).date().isoformat()
        async with self.services.db.transaction() as session:
            waiting = lacking(await standings(scopes, session=session))
            by_manager: dict[str, list[Standing]] = defaultdict(list)
            unassigned = []
            for customer in waiting:
                if _is_slack_user(customer.account_manager):
                    by_manager[str(customer.account_manager)].append(customer)
                else:
                    unassigned.append(customer)
            sent, earlier = await self._send_reminders(session, by_manager, scopes, today, now)
            audit.record(session, user_id=user_id, action="rollout-remind",
                         detail=f"{len(sent)} account managers, "
                                f"{sum(len(c) for c in sent.values())} customers")  # fmt: skip
        if sent:
            self.services.wake_outbox()
        log.info("rollout reminders by %s: %d account managers", user_id, len(sent))
        return RemindReport(sent, earlier, unassigned)

    async def _send_reminders(
        self,
        session: AsyncSession,
        by_manager: dict[str, list[Standing]],
        scopes: tuple[str, ...],
        today: str,
        now: datetime,
    ) -> tuple[dict[str, list[Standing]], dict[str, str]]:
        sent: dict[str, list[Standing]] = {}
        earlier: dict[str, str] = {}
        for manager, customers in sorted(by_manager.items()):
            key = f"rollout-remind:{manager}:{today}"
            if not await claim_key(key, now.isoformat(), session=session, now=now):
                found = await session.scalar(select(KeyValue.value).where(KeyValue.key == key))
                earlier[manager] = found or ""
                continue
            message = render_remind_dm(customers, scopes, self.settings.brincr_rollout_deadline)
            await enqueue(session, kind="dm", channel_id=manager, text=message.text,
                          blocks=message.block_dicts())  # fmt: skip
            sent[manager] = customers
        return sent, earlier
