"""Grouped incidents in Slack and PagerDuty (the cause and threshold are ``bot.alerts.grouping``'s):
opening a group, customers joining and leaving it, its message and thread.

A rollout reaches hundreds of customers over a few sweeps, each joining the group in its
check's transaction. So that this does not queue one Slack update and one thread reply per
customer, both are coalesced: a pending, unclaimed outbox row for the group's message is
rewritten instead of adding another (a conditional UPDATE: a sender that claimed it first
wins, and then a new row is added), and customers who join after the group opened are
listed in one pending "joined" reply, up to ``THREAD_CHUNK`` lines each.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerts import grouping
from bot.alerts.holds import drop_for_group
from bot.alerts.pager import Pager
from bot.alerts.render import folded_note, render_folded, render_followup
from bot.alerts.render_groups import member_line, render_group, render_joined, render_member_list
from bot.core import metrics
from bot.core.clock import utcnow
from bot.domain import State
from bot.outbox import enqueue
from bot.settings import Settings
from bot.slack.blocks import Message
from storage import groups, notifications
from storage.db import forget
from storage.incidents import OPEN_INVOLVEMENT, close_if_open, open_by_key
from storage.models import Customer, Incident


class IncidentWriter(Protocol):
    """What a group needs of the incident service (:class:`bot.alerts.service.Alerts`)."""

    settings: Settings
    pager: Pager

    def channel_of(self, incident: Incident) -> str: ...

    def mention(self, incident: Incident, customer: Customer | None) -> str: ...

    async def insert(self, session: AsyncSession, incident: Incident) -> bool: ...

    async def post(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> None: ...

    async def resolve(
        self, session: AsyncSession, incident: Incident, customer: Customer | None, now: datetime
    ) -> None: ...


log = logging.getLogger(__name__)


class GroupAlerts:
    def __init__(self, alerts: IncidentWriter) -> None:
        self.alerts = alerts
        self.settings = alerts.settings

    async def place(self, session: AsyncSession, customer: Customer, now: datetime) -> bool:
        """True when a group covers the broken customer: it was in one, joined one, or its
        cause reached the threshold and it opened one. False: it alerts on its own."""
        cause = grouping.Cause.of(customer)
        current = await groups.group_of(customer.id, session=session)
        if current is not None:
            if current.open_key == cause.key:
                return True
            await self.leave(session, current, customer, now)  # broken another way now
        group = await open_by_key(cause.key, session=session)
        if group is not None:
            await self._join(session, group, [customer.id], now)
            await self._note_joined(session, group, customer)
            await self._fold(session, group, cause, now)
            await self.refresh(session, group, now)
            return True
        ids = await groups.peers(
            cause.environment, cause.state, cause.signature, now, session=session
        )
        counted = len(ids)
        if cause.state == State.FAILING and cause.signature and counted:
            counted += await groups.failing_soon(cause.environment, cause.signature, now,
                                                 session=session)  # fmt: skip
        if counted and counted < grouping.group_threshold():
            # Customers that alerted on their own with this cause count too: the group
            # folds them in, so the end state is one incident per cause whatever the timing.
            counted += await groups.count_singles_with_cause(
                cause.environment, cause.state, cause.signature, session=session
            )
        if counted < grouping.group_threshold():
            return False
        return await self._open(session, cause, ids, customer, now)

    async def _open(
        self, session: AsyncSession, cause: grouping.Cause, ids: list[int], customer: Customer,
        now: datetime,
    ) -> bool:  # fmt: skip
        group = Incident(
            kind="group", upstream_key=cause.key, open_key=cause.key, state=cause.state,
            reason=cause.plain, affected_count=len(ids), opened_at=now,
            next_reminder_at=now + self.settings.alert_repeat,
            channel_id=self.settings.alert_channel_for(cause.environment),
        )  # fmt: skip
        if not await self.alerts.insert(session, group):
            return await self.place(session, customer, now)  # another replica opened it
        await self._join(session, group, ids, now)
        await self._fold(session, group, cause, now)
        await self.alerts.post(session, group, None, now)
        await self._list_in_thread(session, group)
        log.warning("group incident %s opened: %s customers, %s", group.id, len(ids), cause.plain)
        return True

    async def recovered(self, session: AsyncSession, customer: Customer, now: datetime) -> None:
        """A healthy customer leaves its group (if any)."""
        group = await groups.group_of(customer.id, session=session)
        if group is not None:
            await self.leave(session, group, customer, now)

    async def leave(
        self, session: AsyncSession, group: Incident, customer: Customer, now: datetime
    ) -> None:
        """The last customer leaving resolves the group (once, whichever replica)."""
        left = await groups.remove_member(group, customer.id, session=session)
        if left == 0:
            if await close_if_open(group.id, now, session=session):
                await self.alerts.resolve(session, group, None, now)
        else:
            await self.refresh(session, group, now)

    async def _join(
        self, session: AsyncSession, group: Incident, ids: list[int], now: datetime
    ) -> None:
        forget(session, OPEN_INVOLVEMENT)
        try:
            async with session.begin_nested():
                await groups.add_members(group, ids, now, session=session)
        except IntegrityError:  # another replica added them first
            group.affected_count = await groups.member_count(group.id, session=session)
        await drop_for_group(ids, session=session)  # held alerts: the group covers them

    async def _fold(
        self, session: AsyncSession, group: Incident, cause: grouping.Cause, now: datetime
    ) -> None:
        """Single incidents with the group's cause join it: each single's message points to
        the group, its page is resolved, and only the group pages from then on."""
        singles = await groups.singles_with_cause(
            cause.environment, cause.state, cause.signature, session=session
        )
        folded = []
        for incident, customer in singles:
            if not await close_if_open(incident.id, now, session=session):
                continue  # another replica folded or resolved it
            incident.resolved_at, incident.open_key = now, None
            await self._join(session, group, [customer.id], now)
            await self.alerts.pager.resolve(session, incident)
            folded.append((incident, customer))
            metrics.ALERT_FOLDS.inc()
            log.info("incident %s of %s folded into group %s", incident.id, customer.kvk,
                     group.id)  # fmt: skip
        for incident, customer in folded:  # each names the group as it is with all of them
            await self._show_folded(session, incident, customer, group)

    async def _show_folded(
        self, session: AsyncSession, incident: Incident, customer: Customer, group: Incident
    ) -> None:
        if incident.root_notification_id is None:
            return
        channel = self.alerts.channel_of(incident)
        message = render_folded(incident, customer, group)
        await enqueue(
            session, kind="update", channel_id=channel, text=message.text,
            blocks=message.block_dicts(), target_id=incident.root_notification_id,
        )  # fmt: skip
        note = render_followup(folded_note(group))
        await enqueue(
            session, kind="reply", channel_id=channel, text=note.text,
            blocks=note.block_dicts(), target_id=incident.root_notification_id,
        )  # fmt: skip

    # --- the message and its thread --------------------------------------------------------

    async def render(self, session: AsyncSession, group: Incident, now: datetime) -> Message:
        shown = await groups.members(group.id, session=session, limit=grouping.SHOWN)
        mention = self.alerts.mention(group, None)
        return render_group(group, shown, now, mention=mention)

    async def refresh(self, session: AsyncSession, group: Incident, now: datetime) -> None:
        """Update the group's message in place, rewriting a pending update if there is one."""
        if group.root_notification_id is None:
            return
        message = await self.render(session, group, now)
        blocks = message.block_dicts()
        payload: dict[str, Any] = {"text": message.text, "blocks": blocks}
        if not await notifications.rewrite_pending_update(
            group.root_notification_id, payload, utcnow(), session=session
        ):
            await enqueue(
                session, kind="update", channel_id=self.alerts.channel_of(group),
                text=message.text, blocks=blocks,
                target_id=group.root_notification_id,
            )  # fmt: skip

    async def _note_joined(
        self, session: AsyncSession, group: Incident, customer: Customer
    ) -> None:
        """List a customer that joined after the group opened in its thread (coalesced)."""
        if group.root_notification_id is None:
            return
        prefix = f"group:{group.id}:joined:"
        line = member_line(grouping.Member(customer.name, customer.kvk))
        now = utcnow()
        row = await notifications.last_pending_with_prefix(prefix, now, session=session)
        if row is not None and len(row.payload.get("lines", [])) < grouping.THREAD_CHUNK:
            lines = [*row.payload["lines"], line]
            message = render_joined(lines)
            payload = {"text": message.text, "blocks": message.block_dicts(), "lines": lines}
            if await notifications.rewrite_pending(row.id, payload, now, session=session):
                return
        sent_before = await notifications.count_with_prefix(prefix, session=session)
        message = render_joined([line])
        new = await enqueue(
            session, kind="reply", channel_id=self.alerts.channel_of(group), text=message.text,
            blocks=message.block_dicts(), target_id=group.root_notification_id,
            dedupe_key=f"{prefix}{sent_before}",
        )  # fmt: skip
        new.payload = {**new.payload, "lines": [line]}

    async def _list_in_thread(self, session: AsyncSession, group: Incident) -> None:
        total = group.affected_count
        if total <= grouping.SHOWN:
            return
        everyone = await groups.members(group.id, session=session)
        for start in range(0, len(everyone), grouping.THREAD_CHUNK):
            chunk = everyone[start : start + grouping.THREAD_CHUNK]
            message = render_member_list(chunk, start + 1, total)
            await enqueue(
                session, kind="reply", channel_id=self.alerts.channel_of(group),
                text=message.text, blocks=message.block_dicts(),
                target_id=group.root_notification_id,
            )  # fmt: skip
