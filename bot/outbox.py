"""Outbound Slack messages are rows first (``storage.models.Notification``).

:func:`enqueue` adds a notification inside the caller's transaction, so it is committed
together with the state change that caused it, or not at all. :class:`OutboxSender` delivers
rows, records the message ``ts`` and never posts one twice.

How a row is delivered, and what "exactly once" holds against:

- A tick lists due rows (``pending``, ``next_attempt_at`` passed, claim free, target not
  waiting) in id order and claims each with a conditional ``UPDATE … WHERE status='pending'
  AND (claimed_until IS NULL OR claimed_until < now)`` in its own committed transaction. Only
  one worker's UPDATE matches (rowcount 1), so two replicas never post the same row.
- "reply"/"update" rows wait, without spending an attempt, until their target is sent; they
  fail when it failed. Of several pending updates of one message only the newest is sent; the
  older ones become ``superseded``, so a late retry never overwrites newer content.
- Success (``sent``, ``ts``, ``channel_posted``) is one transaction. A 429 reschedules the row
  after ``Retry-After`` (not counted as an attempt) and ends the tick, without sleeping; this
  worker then holds back that channel's other rows until then (other channels go on).
- Nothing Slack refuses for an outage or a configuration reason is given up on: 5xx, network
  errors, timeouts, and codes such as ``not_in_channel``, ``channel_not_found``,
  ``invalid_auth`` or ``account_inactive`` back off 2 s, 4 s … 15 min (jittered; the loop is
  :class:`bot.sending.ClaimedRowSender`, shared with PagerDuty) and are retried until
  delivered (or superseded), so an alert written while the bot was not in its channel is
  posted once someone invites it. Only the errors that mean the message itself is wrong
  (:data:`BUG_ERRORS`: ``invalid_blocks``, ``msg_too_long`` …) fail the row: a bug, logged
  as ERROR.
- Trouble is loud and not noisy: one ERROR line when a problem (channel, error) starts (a
  transient one after :data:`OUTAGE_LOUD_AFTER`), one line when that channel takes messages
  again; ``storage.slack_delivery`` lists the problems for ``/metrics``, ``/brincr status``
  and the App Home. None of it touches ``/readyz``.
- A worker that dies holding a claim delays its row by at most ``claim_for``; then another
  worker claims it again. Nothing is lost.

The remaining window for a duplicate: Slack's ``chat.postMessage`` has no idempotency key, so
a worker killed after Slack accepted the message but before ``sent`` was committed posts it
again after ``claim_for``. Between Slack's answer and that commit lies one small UPDATE: a few
milliseconds, unless the database is unreachable at that moment (then the failed commit leaves
the claim to expire, and the row is posted again). Likewise a timeout or dropped connection
after Slack accepted the message looks like a transient failure and is retried. The client's
timeout (slack-sdk: 30 s, plus one connection retry) must stay well below ``claim_for``, or a
slow call could be claimed by a second worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.clock import utcnow
from bot.core.metrics import OUTBOX_DELIVERED, OUTBOX_FAILURES, record_upstream
from bot.domain.retrying import Backoff, header_retry_after
from bot.domain.slack_errors import BUG_ERRORS, TRANSIENT_ERRORS, fix_for
from bot.sending import ClaimedRowSender, Failure, Step
from storage import claims, notifications
from storage.db import Database
from storage.models import Notification
from storage.statuses import NotificationStatus as Status

logger = logging.getLogger(__name__)

Kind = Literal["post", "update", "reply", "dm"]
KINDS = frozenset(get_args(Kind))


async def enqueue(
    session: AsyncSession,
    *,
    kind: Kind,
    channel_id: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    target_id: int | None = None,
    dedupe_key: str | None = None,
) -> Notification:
    """Add a notification to the outbox in the caller's transaction.

    ``blocks`` are Block Kit dicts (``[b.to_dict() for b in blocks]``); ``text`` is the
    fallback Slack shows in notifications. For "update" and "reply", ``target_id`` is the
    notification whose message is updated or replied to. With a ``dedupe_key`` that already
    exists, the existing row is returned and nothing is added.
    """
    if dedupe_key is not None:
        existing = await notifications.by_dedupe_key(dedupe_key, session=session)
        if existing is not None:
            return existing
    if kind in ("update", "reply") and target_id is None:
        raise ValueError(f"a {kind!r} notification needs target_id")
    now = utcnow()
    row = Notification(
        dedupe_key=dedupe_key,
        created_at=now,
        kind=kind,
        channel_id=channel_id,
        target_id=target_id,
        payload={"text": text, "blocks": blocks or []},
        status=Status.PENDING,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    await session.flush()
    return row


# ---------------------------------------------------------------------------- the sender

NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)  # asyncio.TimeoutError included
DEFAULT_RETRY_AFTER = 30.0  # seconds, when a 429 carries no usable Retry-After
OUTAGE_LOUD_AFTER = timedelta(minutes=10)  # a transient failure this old becomes an ERROR
PROBLEM_FORGOTTEN_AFTER = timedelta(hours=1)  # not seen failing this long: it ended


@dataclass
class _Problem:
    """One (channel, error) this worker sees failing, and whether it said so as ERROR."""

    since: datetime
    last_seen: datetime
    loud: bool = False


def _retry_after(headers: Any) -> float:
    wait = header_retry_after(headers, utcnow())
    return DEFAULT_RETRY_AFTER if wait is None else wait


def _classify(exc: Exception) -> Failure:
    """Sort a failed Slack call into permanent, transient or rate limited."""
    if not isinstance(exc, SlackApiError):  # network trouble, or a request slack-sdk refused
        refused = isinstance(exc, SlackClientError)
        return Failure(type(exc).__name__, permanent=refused, transient=not refused)
    status = exc.response.status_code
    data = exc.response.data
    code = str(data.get("error") or "") if isinstance(data, dict) else ""
    if status == 429:
        retry_after = _retry_after(exc.response.headers)
        return Failure(code or "ratelimited", False, retry_after, status=429, transient=True)
    transient = status >= 500 or code in TRANSIENT_ERRORS
    error = code if status == 200 else f"HTTP {status} {code}".strip()
    permanent = code in BUG_ERRORS and not transient
    return Failure(error, permanent=permanent, status=status, transient=transient)


def _message_args(row: Notification) -> dict[str, Any]:
    args: dict[str, Any] = {"text": row.payload.get("text", "")}
    # chat.update with text and no blocks erases the message's blocks: always send them.
    if row.payload.get("blocks"):
        args["blocks"] = row.payload["blocks"]
    return args


class OutboxSender(ClaimedRowSender[Notification]):
    """Delivers due outbox rows to Slack, each exactly once (see the module docstring and
    :mod:`bot.sending`, whose loop it is)."""

    model = Notification
    backoff = Backoff(first=timedelta(seconds=2), cap=timedelta(minutes=15))

    def __init__(
        self,
        db: Database,
        client: AsyncWebClient,
        *,
        worker_id: str,
        poll_interval: float = 1.0,
        batch: int = 20,
        claim_for: timedelta = timedelta(minutes=2),
    ) -> None:
        super().__init__(
            db, name="outbox-sender", worker_id=worker_id, poll_interval=poll_interval,
            batch=batch, claim_for=claim_for, log=logger,
        )  # fmt: skip
        self._client = client
        # Channels that answered 429, until Retry-After passes: their rows wait, in order.
        self._paused: dict[str, datetime] = {}
        # Delivery problems this worker has seen and not yet seen recover, by (channel, error).
        self._problems: dict[tuple[str, str], _Problem] = {}

    async def deliver_due(self) -> int:
        now = utcnow()
        self._paused = {channel: end for channel, end in self._paused.items() if end > now}
        return await super().deliver_due()

    async def _due_ids(self, now: datetime) -> list[int]:
        async with self._db.transaction() as session:
            return await notifications.due_ids(
                now, list(self._paused), session=session, limit=self._batch
            )

    async def _deliver(self, row_id: int) -> Step:
        claimed = await self._claim_with_target(row_id)
        if claimed is None:
            return Step.SKIPPED
        row, target = claimed
        if row.kind not in KINDS:
            failure = Failure(f"unknown_kind {row.kind}", permanent=True)
            return await self._record_failure(row, failure)
        if row.kind in ("reply", "update"):
            blocked = await self._check_target(row, target)
            if blocked is not None:
                return blocked
        try:
            response = await self._call_slack(row, target)
        except (SlackClientError, *NETWORK_ERRORS) as exc:
            failure = _classify(exc)
            record_upstream("slack", failure.status, error=failure.error)
            return await self._record_failure(row, failure)
        await self._record_sent(row, response)
        return Step.SENT

    async def _claim_with_target(
        self, row_id: int
    ) -> tuple[Notification, Notification | None] | None:
        """Claim one due row in its own transaction, with the message it updates or answers."""
        async with self._db.transaction() as session:
            row = await self._claim(row_id, session)
            if row is None:
                return None
            target = None
            if row.target_id is not None:
                target = await session.get(Notification, row.target_id)
            return row, target

    async def _check_target(self, row: Notification, target: Notification | None) -> Step | None:
        """None when ``row`` can go now; else what became of it."""
        if target is None:
            return await self._record_failure(row, Failure("target_not_found", permanent=True))
        if target.status == Status.PENDING:
            await self._release(row.id)  # not an attempt: the target goes first
            return Step.SKIPPED
        if target.status != Status.SENT or target.ts is None:
            reason = f"target_{target.status}: notification {target.id}"
            return await self._record_failure(row, Failure(reason, permanent=True))
        if row.kind == "update":
            return await self._supersede_older(row)
        return None

    async def _supersede_older(self, row: Notification) -> Step | None:
        """Let only the newest pending update of a message reach Slack, and never out of order.

        An older pending update is superseded (a late retry would overwrite newer content);
        this row is superseded itself when a newer one waits; it waits while an older update
        is in flight at another worker, so that one lands first.
        """
        now = utcnow()
        async with self._db.transaction() as session:
            if await notifications.pending_updates(row, newer=True, session=session):
                await claims.set_row(
                    Notification,
                    row.id,
                    session=session,
                    status=Status.SUPERSEDED,
                    last_error="newer update",
                )
                return Step.SKIPPED
            await notifications.supersede_older_free(row, now, session=session)
            if await notifications.pending_updates(row, newer=False, session=session):
                await claims.set_row(
                    Notification, row.id, session=session
                )  # release; not an attempt
                return Step.SKIPPED
        return None

    async def _call_slack(
        self, row: Notification, target: Notification | None
    ) -> AsyncSlackResponse:
        args = _message_args(row)
        if target is None:  # "post", or "dm": Slack opens the DM for a user ID
            return await self._client.chat_postMessage(channel=row.channel_id, **args)
        channel, ts = target.channel_posted or target.channel_id, target.ts or ""
        if row.kind == "update":
            return await self._client.chat_update(channel=channel, ts=ts, **args)
        return await self._client.chat_postMessage(channel=channel, thread_ts=ts, **args)

    # ------------------------------------------------------------------ outcomes

    async def _release(self, row_id: int) -> None:
        await self._set_row(row_id)

    async def _record_sent(self, row: Notification, response: AsyncSlackResponse) -> None:
        channel, ts = response.get("channel"), response.get("ts")
        async with self._db.transaction() as session:
            await claims.set_row(
                Notification,
                row.id,
                session=session,
                status=Status.SENT,
                sent_at=utcnow(),
                ts=ts,
                channel_posted=channel,
            )
        OUTBOX_DELIVERED.inc()
        record_upstream("slack", 200)
        logger.info("outbox %s (%s) delivered to %s ts=%s", row.id, row.kind, channel, ts)
        await self._recovered(row.channel_id)

    async def _recovered(self, channel: str) -> None:
        """Say once that ``channel`` takes messages again, and retry its waiting rows now."""
        ended = [key for key in self._problems if key[0] == channel]
        if not ended:
            return
        for key in ended:
            problem = self._problems.pop(key)
            logger.warning(
                "Slack delivery to %s works again (was failing: %s since %s)",
                channel, key[1], problem.since.isoformat(timespec="seconds"),
            )  # fmt: skip
        await self.retry_failing_now(channel)

    async def retry_failing_now(self, channel: str | None = None) -> int:
        """Make rows waiting out a backoff after a failure (of ``channel``, or all) due now:
        after a fix, the backlog goes out at once instead of after up to 15 minutes."""
        async with self._db.transaction() as session:
            count = await notifications.retry_waiting_now(utcnow(), channel, session=session)
        if count:
            self.wake()
        return count

    def _note_failure(
        self, row: Notification, failure: Failure, *, given_up: bool, words: str
    ) -> None:
        """Count and log it; a rate limit holds back the channel's other rows here."""
        OUTBOX_FAILURES.labels(permanent=str(given_up).lower()).inc()
        logger.info("outbox %s (%s) failed: %s; %s", row.id, row.kind, failure.error, words)
        if failure.retry_after is not None:
            self._paused[row.channel_id] = utcnow() + timedelta(seconds=failure.retry_after)
        else:
            self._note_problem(row.channel_id, failure)

    def _note_problem(self, channel: str, failure: Failure) -> None:
        """One ERROR line per (channel, error) when it starts; an outage only once it lasts."""
        now, key = utcnow(), (channel, failure.error)
        problem = self._problems.get(key)
        if problem is None or now - problem.last_seen > PROBLEM_FORGOTTEN_AFTER:
            # new, or it ended unseen (another replica delivered): it starts again
            problem = self._problems[key] = _Problem(since=now, last_seen=now)
        problem.last_seen = now
        if problem.loud:
            return
        if failure.permanent:
            problem.loud = True
            logger.error(
                "Slack refuses a message to %s for good (%s): given up, the others go on; "
                "a malformed message is a bug", channel, failure.error,
            )  # fmt: skip
        elif not failure.transient:
            problem.loud = True
            fix = fix_for(failure.error)
            logger.error(
                "Slack delivery to %s is failing: %s; kept and retried until it works: %s",
                channel, failure.error, fix,
            )  # fmt: skip
        elif now - problem.since >= OUTAGE_LOUD_AFTER:
            problem.loud = True
            logger.error(
                "Slack delivery to %s has been failing since %s: %s; kept and retried",
                channel, problem.since.isoformat(timespec="seconds"), failure.error,
            )  # fmt: skip
