"""The webhook trust model (docs/domain.md, Visma webhooks, docs/security.md) over real HTTP to a
running bot: the signed body wins over unsigned headers, replays and stale notifications are
dropped, deliveries are hints confirmed by a fresh token request, processing is bounded, and a
delivery whose processing failed is retried by the bot itself."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack
from bot.domain import State
from bot.onboarding import tenant_events
from bot.simulator import Simulator
from bot.simulator.webhooks import build_delivery, sign_webhook
from storage.models import Incident, WebhookBodyHash, WebhookEvent
from storage.retention import prune_operational
from tests.harness import BotHarness, start_bot
from tests.web.test_webhook_endpoint import customer_row, processed

SECRET = "whsec-trust-0a1b2c3d"
ADDED, DELETED = "tenant_application_added", "tenant_application_deleted"


@pytest.fixture
async def bot(database_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(database_url, slack, sim, visma_webhook_secrets=SECRET)
    yield harness
    await harness.close()


async def post(bot: BotHarness, headers: dict[str, str], body: bytes) -> httpx.Response:
    return await bot.http.post(bot.url + "/webhooks/visma", content=body, headers=headers)


def rewritten(headers: dict[str, str], **changes: str) -> dict[str, str]:
    """The genuine headers with some replaced: the signature is left as it was."""
    return {**headers, **{name.replace("_", "-"): value for name, value in changes.items()}}


async def stored(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


async def healthy_customer(bot: BotHarness, kvk: str) -> str:
    tenant = str(uuid.uuid4())
    customer_id = await bot.add_customer(kvk, f"Klant {kvk}", tenant_id=tenant)
    await bot.runtime.bot.checker.check_customer(customer_id)
    assert (await customer_row(bot, kvk)).state == State.HEALTHY
    return tenant


async def test_a_genuine_delivery_replayed_with_rewritten_headers_changes_nothing(
    bot: BotHarness,
) -> None:
    first, second = await healthy_customer(bot, "11111111"), await healthy_customer(bot, "22222222")
    app = bot.runtime.settings.production_client_id or ""
    # as the stand-in's dispatcher sends it: the body repeats the id and the timestamp
    headers, body = build_delivery(ADDED, first, "production", app, SECRET)
    # a leaner genuine body that names only the tenant and the event
    lean = json.dumps({"tenantId": second, "eventType": ADDED}).encode()
    lean_headers = {"x-vwd-event-id": ADDED, "x-vwd-tenant-id": second,
                    "x-vwd-notification-id": "lean-1",
                    "X-VWD-Signature-V1": sign_webhook(SECRET, lean)}  # fmt: skip
    before = {t: bot.sim.counters.token_requests(tenant_id=t) for t in (first, second)}

    assert (await post(bot, headers, body)).status_code == 202
    assert (await post(bot, lean_headers, lean)).status_code == 202
    event = await processed(bot, headers["x-vwd-notification-id"])
    assert event.outcome == "checked 11111111: healthy"
    assert (await processed(bot, "lean-1")).outcome == "checked 22222222: healthy"

    rewrites: list[dict[str, str]] = [
        {"x_vwd_event_id": DELETED},
        {"x_vwd_tenant_id": second},
        {"x_vwd_notification_id": str(uuid.uuid4())},
        {"x_vwd_notification_timestamp": "2001-09-09T01:46:40Z"},
        {"x_vwd_event_id": DELETED, "x_vwd_tenant_id": second,
         "x_vwd_notification_id": str(uuid.uuid4()),
         "x_vwd_notification_timestamp": "2001-09-09T01:46:40Z"},
    ]  # fmt: skip
    # everything the full body says: a header saying otherwise is refused
    for changes in rewrites:
        response = await post(bot, rewritten(headers, **changes), body)
        assert response.status_code == 400, changes
        assert "contradicts the signed body" in response.json()["error"]
    # the lean body: event and tenant are signed, so rewriting them is refused ...
    for changes in ({"x_vwd_event_id": DELETED}, {"x_vwd_tenant_id": first}):
        response = await post(bot, rewritten(lean_headers, **changes), lean)
        assert response.status_code == 400, changes
    # ... and under fresh notification ids it is a replay, dropped with a 2xx
    for _ in range(30):
        fresh = rewritten(lean_headers, x_vwd_notification_id=str(uuid.uuid4()))
        response = await post(bot, fresh, lean)
        assert (response.status_code, response.json()["dropped"]) == (200, "replay")
    # ... and with a notification timestamp of 2001: stale, dropped with a 2xx
    response = await post(bot, rewritten(lean_headers, **rewrites[3], **rewrites[2]), lean)
    assert (response.status_code, response.json()["dropped"]) == (200, "stale")

    await bot.runtime.bot.tenant_events.stop()
    assert await stored(bot) == 2
    for kvk in ("11111111", "22222222"):
        assert (await customer_row(bot, kvk)).state == State.HEALTHY
    assert not bot.slack.calls_to("chat.postMessage")
    async with bot.runtime.bot.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(Incident)) == 0
    for tenant in (first, second):  # the one confirming token request each
        assert bot.sim.counters.token_requests(tenant_id=tenant) == before[tenant] + 1


async def test_a_forged_deleted_for_a_tenant_that_really_removed_the_app_still_revokes_it(
    bot: BotHarness,
) -> None:
    tenant = await healthy_customer(bot, "11111111")
    bot.sim.remove(tenant)
    body = json.dumps({"tenantId": tenant}).encode()  # a genuine body that names no event
    headers = {
        "x-vwd-event-id": DELETED, "x-vwd-tenant-id": tenant,
        "x-vwd-notification-id": str(uuid.uuid4()),
        "X-VWD-Signature-V1": sign_webhook(SECRET, body),
    }  # fmt: skip
    before = bot.sim.counters.token_requests(tenant_id=tenant)
    assert (await post(bot, headers, body)).status_code == 202
    event = await processed(bot, headers["x-vwd-notification-id"])
    assert event.outcome == "revoked 11111111: confirmed by a token request"
    assert (await customer_row(bot, "11111111")).state == State.REVOKED
    assert bot.sim.counters.token_requests(tenant_id=tenant) == before + 1


async def test_an_added_for_a_tenant_that_grants_no_token_links_nothing(bot: BotHarness) -> None:
    body = json.dumps({"tenantId": str(uuid.uuid4()), "eventType": ADDED}).encode()
    headers = {"x-vwd-notification-id": "n-1", "X-VWD-Signature-V1": sign_webhook(SECRET, body)}
    assert (await post(bot, headers, body)).status_code == 202
    assert (await processed(bot, "n-1")).outcome == "not linked: the tenant grants no token"
    assert not bot.slack.calls_to("chat.postMessage")


@pytest.mark.parametrize(
    ("moment", "why"),
    [(timedelta(days=-2), "older than 24 h"), (timedelta(hours=1), "in the future")],
)
async def test_a_signed_notification_outside_the_window_is_dropped_with_a_2xx(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, moment: timedelta, why: str
) -> None:
    tenant = await healthy_customer(bot, "11111111")
    at = (utcnow() + moment).isoformat()
    body = json.dumps({"tenantId": tenant, "eventType": DELETED, "timestamp": at}).encode()
    headers = {"x-vwd-notification-id": "n-old", "X-VWD-Signature-V1": sign_webhook(SECRET, body)}
    response = await post(bot, headers, body)
    assert (response.status_code, response.json()["dropped"]) == (200, "stale")
    assert await stored(bot) == 0
    assert any("n-old" in r.getMessage() and why in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("length", [101, 150, 200])
async def test_a_notification_id_longer_than_its_column_is_a_clear_400(
    bot: BotHarness, length: int
) -> None:
    body = json.dumps({"tenantId": str(uuid.uuid4()), "eventType": ADDED}).encode()
    headers = {
        "x-vwd-notification-id": "n" * length,
        "X-VWD-Signature-V1": sign_webhook(SECRET, body),
    }
    response = await post(bot, headers, body)
    assert response.status_code == 400
    assert response.json()["error"] == "the notification id is longer than 100 characters"
    assert await stored(bot) == 0


async def test_a_delivery_whose_confirmation_failed_is_retried_by_the_bot_until_it_succeeds(
    bot: BotHarness,
) -> None:
    tenant = await healthy_customer(bot, "11111111")
    bot.sim.remove(tenant)
    bot.sim.fault("production", "token", "down")
    body = json.dumps({"tenantId": tenant, "eventType": DELETED}).encode()
    headers = {"x-vwd-notification-id": "n-r", "X-VWD-Signature-V1": sign_webhook(SECRET, body)}
    assert (await post(bot, headers, body)).status_code == 202
    await bot.runtime.bot.tenant_events.stop()
    async with bot.runtime.bot.db.transaction() as session:
        row = await session.get(WebhookEvent, "n-r")
    assert row is not None and row.processed_at is None and row.attempts == 1
    assert row.outcome is not None and row.outcome.startswith("retrying (attempt 1)")
    assert (await customer_row(bot, "11111111")).state != State.REVOKED

    events = bot.runtime.bot.tenant_events
    assert await events.retry_due(utcnow()) == 0  # not due yet: backing off
    bot.sim.fault("production", "token", None)
    assert await events.retry_due(utcnow() + timedelta(minutes=1)) == 1
    assert (await processed(bot, "n-r")).outcome == (
        "revoked 11111111: confirmed by a token request"
    )
    assert await events.retry_due(utcnow() + timedelta(hours=2)) == 0  # done: never again


async def test_a_delivery_that_never_succeeds_is_given_up_after_the_last_attempt(
    bot: BotHarness,
) -> None:
    tenant = await healthy_customer(bot, "11111111")
    bot.sim.fault("production", "token", "down")
    body = json.dumps({"tenantId": tenant, "eventType": DELETED}).encode()
    headers = {"x-vwd-notification-id": "n-g", "X-VWD-Signature-V1": sign_webhook(SECRET, body)}
    assert (await post(bot, headers, body)).status_code == 202
    await bot.runtime.bot.tenant_events.stop()
    later = utcnow()
    for _ in range(tenant_events.MAX_ATTEMPTS):
        later += timedelta(hours=2)
        await bot.runtime.bot.tenant_events.retry_due(later)
    row = await processed(bot, "n-g")
    assert row.outcome is not None and row.outcome.startswith(
        f"given up after {tenant_events.MAX_ATTEMPTS} attempts"
    )


async def test_deliveries_for_a_waiting_tenant_are_coalesced_and_a_full_queue_left_to_retry(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tenant_events, "WORKERS", 1)
    monkeypatch.setattr(tenant_events, "QUEUE_LIMIT", 1)
    tenants = [await healthy_customer(bot, kvk) for kvk in ("11111111", "22222222", "33333333")]
    busy, waiting, overflow = tenants
    bot.sim.fault("production", "token", None, latency=0.3)
    before = {t: bot.sim.counters.token_requests(tenant_id=t) for t in tenants}

    async def send(tenant: str, nid: str) -> None:
        body = json.dumps({"tenantId": tenant, "eventType": ADDED, "n": nid}).encode()
        headers = {"x-vwd-notification-id": nid, "X-VWD-Signature-V1": sign_webhook(SECRET, body)}
        assert (await post(bot, headers, body)).status_code == 202

    await send(busy, "a-1")  # taken by the one worker at once
    await send(waiting, "b-1")
    for n in range(2, 6):
        await send(waiting, f"b-{n}")  # coalesced with b-1
    await send(overflow, "c-1")  # the queue holds one waiting tenant: full
    await bot.runtime.bot.tenant_events.stop()

    assert (await processed(bot, "b-1")).outcome == "coalesced into b-5"
    assert (await processed(bot, "b-5")).outcome == "checked 22222222: healthy"
    assert bot.sim.counters.token_requests(tenant_id=waiting) == before[waiting] + 1
    async with bot.runtime.bot.db.transaction() as session:
        left = await session.get(WebhookEvent, "c-1")
    assert left is not None and left.processed_at is None and left.claimed_until is None
    assert await bot.runtime.bot.tenant_events.retry_due() == 1
    assert (await processed(bot, "c-1")).outcome == "checked 33333333: healthy"


async def test_every_replica_runs_the_webhook_retry_job(bot: BotHarness) -> None:
    jobs = {job.name: job for job in bot.runtime.bot.scheduler.jobs}
    assert jobs["webhook-retry"].every == tenant_events.RETRY_EVERY
    assert await jobs["webhook-retry"].tick() == 0  # nothing to retry


async def test_a_body_without_its_own_timestamp_stays_a_replay_after_its_row_is_pruned(
    bot: BotHarness,
) -> None:
    """Issue 19, finding 13: headers supply the timestamp of a lean body, so it could be
    replayed with fresh ones once the 30-day row is gone; its hash (32 bytes) is kept."""
    tenant = await healthy_customer(bot, "33333333")
    lean = json.dumps({"tenantId": tenant, "eventType": DELETED}).encode()

    def headers(nid: str) -> dict[str, str]:
        return {"x-vwd-event-id": DELETED, "x-vwd-tenant-id": tenant,
                "x-vwd-notification-id": nid,
                "x-vwd-notification-timestamp": utcnow().isoformat(),
                "X-VWD-Signature-V1": sign_webhook(SECRET, lean)}  # fmt: skip

    assert (await post(bot, headers("lean-old"), lean)).status_code == 202
    await processed(bot, "lean-old")
    app = bot.runtime.settings.production_client_id or ""
    timed_headers, timed = build_delivery(ADDED, tenant, "production", app, SECRET)
    assert (await post(bot, timed_headers, timed)).status_code == 202  # carries its timestamp
    await processed(bot, timed_headers["x-vwd-notification-id"])
    later = utcnow() + timedelta(days=31)
    pruned = await prune_operational(bot.runtime.bot.db, later)
    assert pruned["webhook_events"] == 2 and await stored(bot) == 0

    response = await post(bot, headers("lean-new"), lean)  # a month later, fresh headers
    assert (response.status_code, response.json()["dropped"]) == (200, "replay")
    assert await stored(bot) == 0
    async with bot.runtime.bot.db.transaction() as session:  # only the lean body's hash
        kept = (await session.scalars(select(WebhookBodyHash.body_hash))).all()
    assert kept == [hashlib.sha256(lean).digest()]
