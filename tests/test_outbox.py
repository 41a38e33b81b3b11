"""The outbox sender delivers each row to (a fake) Slack exactly once, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update

import bot.outbox
import bot.sending
from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.outbox import OutboxSender, enqueue
from storage.db import Database
from storage.models import Notification
from storage.slack_delivery import delivery_problems

TOKEN = "xoxb-test-secret-token"
CHANNEL = "C0ALERTS"
BLOCKS_V1 = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Acme* is failing"}}]
BLOCKS_V2 = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Acme* recovered"}}]


class Clock:
    """Stands in for ``utcnow`` in ``bot.outbox`` and ``bot.sending``: time moves only when a
    test says so."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(bot.outbox, "utcnow", fake)
    monkeypatch.setattr(bot.sending, "utcnow", fake)
    return fake


@pytest.fixture
def sender(db: Database, slack: FakeSlack) -> OutboxSender:
    return OutboxSender(db, _client(slack), worker_id="worker-1")


def _waits(row: Notification, clock: Clock) -> float:
    """Seconds until the row is due again."""
    return (row.next_attempt_at - clock.now).total_seconds()


def _client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def _enqueue(db: Database, text: str, **kwargs: Any) -> int:
    kwargs.setdefault("kind", "post")
    kwargs.setdefault("channel_id", CHANNEL)
    async with db.transaction() as session:
        row = await enqueue(session, text=text, **kwargs)
        return row.id


async def _row(db: Database, row_id: int) -> Notification:
    async with db.transaction() as session:
        return await session.get_one(Notification, row_id)


async def _set(db: Database, row_id: int, **values: Any) -> None:
    async with db.transaction() as session:
        await session.execute(update(Notification).where(Notification.id == row_id).values(values))


def _answered(slack: FakeSlack, method: str) -> list[dict[str, Any]]:
    """Parameters of the calls to ``method`` that Slack accepted."""
    return [c.params for c in slack.calls_to(method) if not c.failed]


async def test_post_update_and_reply_are_delivered_in_order_threaded_under_the_post(
    db: Database, slack: FakeSlack, sender: OutboxSender
) -> None:
    post = await _enqueue(db, "Acme is failing", blocks=BLOCKS_V1)
    upd = await _enqueue(db, "Acme recovered", kind="update", target_id=post, blocks=BLOCKS_V2)
    reply = await _enqueue(db, "Resolved after 4 minutes", kind="reply", target_id=post)
    dm = await _enqueue(db, "You were mentioned", kind="dm", channel_id="U0ALICE")

    assert await sender.deliver_due() == 4

    posted = await _row(db, post)
    assert posted.status == "sent" and posted.channel_posted == CHANNEL and posted.ts
    assert [c.method for c in slack.calls] == ["chat.postMessage", "chat.update"] + [
        "chat.postMessage"
    ] * 2
    (update_call,) = _answered(slack, "chat.update")
    assert update_call["ts"] == posted.ts and update_call["blocks"] == BLOCKS_V2
    top, thread_reply = slack.messages(CHANNEL)
    assert top["text"] == "Acme recovered" and top["blocks"] == BLOCKS_V2
    assert thread_reply["thread_ts"] == posted.ts
    assert "blocks" not in _answered(slack, "chat.postMessage")[1]  # no empty blocks sent
    assert [m["text"] for m in slack.messages("U0ALICE")] == ["You were mentioned"]
    assert (await _row(db, dm)).channel_posted == slack.dm_channel("U0ALICE")
    for row_id in (upd, reply, dm):
        assert (await _row(db, row_id)).status == "sent"


async def test_an_update_waits_without_an_attempt_until_its_post_is_delivered(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock
) -> None:
    slack.fail("chat.postMessage", status=500, times=1)
    post = await _enqueue(db, "Acme is failing")
    upd = await _enqueue(db, "Acme recovered", kind="update", target_id=post, blocks=BLOCKS_V2)

    assert await sender.deliver_due() == 0
    waiting = await _row(db, upd)
    assert (waiting.status, waiting.attempts, waiting.claimed_until) == ("pending", 0, None)
    assert slack.calls_to("chat.update") == []

    clock.advance(seconds=2)
    assert await sender.deliver_due() == 2
    assert slack.messages(CHANNEL)[0]["blocks"] == BLOCKS_V2


async def test_only_the_newest_of_three_pending_updates_reaches_slack(
    db: Database, slack: FakeSlack, sender: OutboxSender
) -> None:
    post = await _enqueue(db, "Acme is failing")
    await sender.deliver_due()
    older = [await _enqueue(db, f"version {n}", kind="update", target_id=post) for n in (1, 2)]
    newest = await _enqueue(db, "version 3", kind="update", target_id=post, blocks=BLOCKS_V2)

    assert await sender.deliver_due() == 1

    assert [c["text"] for c in _answered(slack, "chat.update")] == ["version 3"]
    assert [(await _row(db, i)).status for i in older] == ["superseded", "superseded"]
    assert (await _row(db, newest)).status == "sent"


async def test_a_late_retry_of_an_older_update_never_overwrites_a_newer_one(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock
) -> None:
    post = await _enqueue(db, "Acme is failing")
    await sender.deliver_due()
    slack.fail("chat.update", status=503, times=1)
    older = await _enqueue(db, "version 1", kind="update", target_id=post)
    await sender.deliver_due()  # fails: retried in 2 s
    await _enqueue(db, "version 2", kind="update", target_id=post)

    assert await sender.deliver_due() == 1
    clock.advance(minutes=5)
    assert await sender.deliver_due() == 0

    assert [c["text"] for c in _answered(slack, "chat.update")] == ["version 2"]
    assert slack.messages(CHANNEL)[0]["text"] == "version 2"
    assert (await _row(db, older)).status == "superseded"


async def test_a_429_reschedules_without_sleeping_and_posts_once_after_retry_after(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock
) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=45, times=1)  # not the default 30
    first = await _enqueue(db, "first")
    await _enqueue(db, "second")
    await _enqueue(db, "elsewhere", channel_id="C0OTHER")

    started = time.monotonic()
    assert await sender.deliver_due() == 0
    assert time.monotonic() - started < 2
    assert len(slack.calls_to("chat.postMessage")) == 1  # the tick stopped at the 429
    limited = await _row(db, first)
    assert limited.next_attempt_at == clock.now + timedelta(seconds=45)
    assert (limited.status, limited.attempts, limited.last_error) == ("pending", 0, "ratelimited")

    clock.advance(seconds=44)
    assert await sender.deliver_due() == 1  # another channel goes on; this one waits
    assert [m["text"] for m in slack.messages("C0OTHER")] == ["elsewhere"]
    clock.advance(seconds=1)
    assert await sender.deliver_due() == 2

    assert [m["text"] for m in slack.messages(CHANNEL)] == ["first", "second"]
    assert len(slack.calls_to("chat.postMessage")) == 4


async def test_server_errors_are_retried_with_backoff_and_delivered_exactly_once(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock
) -> None:
    slack.fail("chat.postMessage", status=500, times=2)
    row_id = await _enqueue(db, "Acme is failing")

    for attempt, backoff in ((1, 2), (2, 4)):
        assert await sender.deliver_due() == 0
        row = await _row(db, row_id)
        assert (row.attempts, row.last_error) == (attempt, "HTTP 500 fatal_error")
        assert _waits(row, clock) == pytest.approx(backoff, rel=0.25)  # jittered
        assert _waits(row, clock) <= backoff
        assert await sender.deliver_due() == 0  # not due yet
        clock.advance(seconds=backoff)

    assert await sender.deliver_due() == 1
    assert await sender.deliver_due() == 0
    assert len(_answered(slack, "chat.postMessage")) == 1
    assert len(slack.messages(CHANNEL)) == 1


async def test_a_network_error_is_transient_and_names_only_the_exception(
    db: Database, slack: FakeSlack, clock: Clock
) -> None:
    url = slack.api_url
    await slack.stop()  # nothing listens there now: connection refused
    sender = OutboxSender(db, AsyncWebClient(token=TOKEN, base_url=url), worker_id="worker-1")
    row_id = await _enqueue(db, "Acme is failing")

    assert await sender.deliver_due() == 0

    row = await _row(db, row_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ClientConnectorError")
    assert 1.5 <= _waits(row, clock) <= 2


async def test_a_long_outage_never_gives_a_row_up_and_backs_off_at_most_15_minutes(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock, caplog: Any
) -> None:
    slack.fail("chat.postMessage", error="service_unavailable")
    row_id = await _enqueue(db, "Acme is failing")

    with caplog.at_level(logging.INFO, logger="bot.outbox"):
        for _ in range(30):  # about six hours of failing attempts
            await sender.deliver_due()
            clock.advance(minutes=15)
        row = await _row(db, row_id)
        assert (row.status, row.attempts, row.last_error) == ("pending", 30, "service_unavailable")
        # at most 15 minutes after the last one (less by the jitter)
        assert timedelta(minutes=-15 * 0.25) <= row.next_attempt_at - clock.now <= timedelta(0)
        slack.clear_failures()
        assert await sender.deliver_due() == 1

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "C0ALERTS" in errors[0] and "service_unavailable" in errors[0]
    recovered = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert len(recovered) == 1
    assert len(slack.messages(CHANNEL)) == 1


@pytest.mark.parametrize(
    "error", ["not_in_channel", "channel_not_found", "invalid_auth", "account_inactive"]
)
async def test_a_configuration_error_keeps_the_row_and_its_reply_until_slack_is_fixed(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock, caplog: Any, error: str
) -> None:
    slack.fail("chat.postMessage", error=error)
    post = await _enqueue(db, "secret customer detail")
    reply = await _enqueue(db, "more detail", kind="reply", target_id=post)

    with caplog.at_level(logging.INFO, logger="bot.outbox"):
        for _ in range(40):  # ten hours: well past any attempt limit a sender might have
            assert await sender.deliver_due() == 0
            clock.advance(minutes=15)
    waiting = await _row(db, post)
    assert (waiting.status, waiting.last_error, waiting.claimed_until) == ("pending", error, None)
    assert waiting.attempts == 40
    assert (await _row(db, reply)).status == "pending"

    slack.clear_failures()  # someone invited the bot, or set the right token
    assert await sender.deliver_due() == 2
    assert await sender.deliver_due() == 0

    top, threaded = slack.messages(CHANNEL)
    assert top["text"] == "secret customer detail" and threaded["thread_ts"] == top["ts"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # one line for the problem, not one per attempt
    assert CHANNEL in errors[0] and error in errors[0]
    lines = [r.getMessage() for r in caplog.records]
    assert not any(TOKEN in line or "secret customer" in line for line in lines)


async def test_a_malformed_message_fails_at_once_as_a_bug_and_its_reply_with_it(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock, caplog: Any
) -> None:
    slack.fail("chat.postMessage", error="invalid_blocks", times=1)
    post = await _enqueue(db, "Acme is failing")
    reply = await _enqueue(db, "more detail", kind="reply", target_id=post)

    with caplog.at_level(logging.INFO, logger="bot.outbox"):
        assert await sender.deliver_due() == 0
    clock.advance(hours=2)  # never retried
    assert await sender.deliver_due() == 0

    failed = await _row(db, post)
    assert (failed.status, failed.last_error) == ("failed", "invalid_blocks")
    assert (await _row(db, reply)).status == "failed"
    assert f"notification {post}" in ((await _row(db, reply)).last_error or "")
    assert len(slack.calls_to("chat.postMessage")) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("invalid_blocks" in line and "bug" in line for line in errors)


async def test_delivery_problems_name_channel_error_and_since_until_delivered(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock
) -> None:
    slack.fail("chat.postMessage", error="not_in_channel")
    written = clock.now
    await _enqueue(db, "one")
    await _enqueue(db, "two")
    await _enqueue(db, "to alice", kind="dm", channel_id="U0ALICE")
    slack.clear_failures()
    slack.fail("chat.postMessage", error="not_in_channel", times=2)
    await sender.deliver_due()

    async with db.transaction() as session:
        problems = await delivery_problems(session=session, now=clock.now)
    assert [(p.channel_id, p.error, p.undelivered, p.given_up) for p in problems] == [
        (CHANNEL, "not_in_channel", 2, False)
    ]
    assert problems[0].since == written

    clock.advance(minutes=1)  # after a fix the backlog goes at once, not after the backoff
    await sender.retry_failing_now()
    assert await sender.deliver_due() == 2
    async with db.transaction() as session:
        assert await delivery_problems(session=session, now=clock.now) == []


async def test_two_senders_on_one_database_deliver_each_of_30_rows_exactly_once(
    db: Database, database_url: str, slack: FakeSlack
) -> None:
    for n in range(30):
        await _enqueue(db, f"message {n}", channel_id=f"C0{n % 3}")
    other_db = Database(database_url)
    try:
        senders = [
            OutboxSender(db, _client(slack), worker_id="worker-1", batch=20),
            OutboxSender(other_db, _client(slack), worker_id="worker-2", batch=20),
        ]
        sent = 0
        for _ in range(5):
            sent += sum(await asyncio.gather(*(s.deliver_due() for s in senders)))
    finally:
        await other_db.close()

    texts = [c["text"] for c in _answered(slack, "chat.postMessage")]
    assert sent == 30
    assert sorted(texts) == sorted(f"message {n}" for n in range(30))
    async with db.transaction() as session:
        workers = set(await session.scalars(select(Notification.claimed_by)))
    assert workers == {"worker-1", "worker-2"}  # they really competed


async def test_a_row_claimed_by_a_dead_worker_is_delivered_once_the_claim_expires(
    db: Database, slack: FakeSlack, sender: OutboxSender, clock: Clock
) -> None:
    row_id = await _enqueue(db, "Acme is failing")
    await _set(db, row_id, claimed_by="dead-worker", claimed_until=clock.now + timedelta(minutes=1))

    assert await sender.deliver_due() == 0
    clock.advance(minutes=1, seconds=1)
    assert await sender.deliver_due() == 1

    row = await _row(db, row_id)
    assert (row.status, row.claimed_by, row.claimed_until) == ("sent", "worker-1", None)
    assert len(slack.messages(CHANNEL)) == 1


async def test_start_wake_and_stop_deliver_a_row_enqueued_after_start(
    db: Database, slack: FakeSlack
) -> None:
    sender = OutboxSender(db, _client(slack), worker_id="worker-1", poll_interval=60)
    await sender.start()
    await asyncio.sleep(0.05)  # the first tick found nothing; the next one is a minute away
    row_id = await _enqueue(db, "Acme is failing")
    sender.wake()

    await slack.wait_for("chat.postMessage", timeout=3)
    started = time.monotonic()
    await sender.stop()

    assert time.monotonic() - started < 1
    assert (await _row(db, row_id)).status == "sent"
