"""``POST /webhooks/visma`` over real HTTP to a running bot: signatures, idempotency, the
tenant added/deleted flows, and the onboarding channel's "Link to customer…" picker."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.demo.fake_slack import FakeSlack
from bot.domain import Environment, State
from bot.onboarding.render_link import PICK_BLOCK
from bot.simulator import Simulator
from bot.simulator.webhooks import sign_webhook
from bot.slack.ids import Action, View
from storage.customers import NewCustomer, add_customer
from storage.models import AuditEntry, Customer, Invitation, StateChange, WebhookEvent
from tests.harness import ADMIN, ALERTS, SCOPES, SUPPORT, BotHarness, start_bot, text_of

FIRST, SECOND = "whsec-first-0a1b2c3d", "whsec-second-4e5f6a7b"
ADDED, DELETED = "tenant_application_added", "tenant_application_deleted"
CODE = "INVITE-CODE-q8w7e6"
BODY_MARKER = "body-marker-zz91"


@pytest.fixture
async def bot(sqlite_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    harness = await start_bot(sqlite_url, slack, sim, visma_webhook_secrets=f"{FIRST},{SECOND}")
    yield harness
    await harness.close()


# --- helpers ---------------------------------------------------------------------------


async def deliver(
    bot: BotHarness,
    event: str,
    tenant_id: str,
    *,
    secret: str | None = FIRST,
    notification_id: str | None = None,
    application_id: str | None = None,
    body: bytes | None = None,
) -> tuple[httpx.Response, str]:
    """One signed delivery as the Visma Webhook Dispatcher sends it; returns the answer and
    the notification id."""
    nid = notification_id or str(uuid.uuid4())
    raw = body if body is not None else json.dumps(
        {"tenantId": tenant_id, "eventType": event, "note": BODY_MARKER}
    ).encode()  # fmt: skip
    headers = {
        "Content-Type": "application/json",
        "x-vwd-event-id": event,
        "x-vwd-tenant-id": tenant_id,
        "x-vwd-notification-id": nid,
        "x-vwd-application-id": application_id or "unknown-app",
    }
    if secret is not None:
        headers["X-VWD-Signature-V1"] = sign_webhook(secret, raw)
    response = await bot.http.post(bot.url + "/webhooks/visma", content=raw, headers=headers)
    return response, nid


async def processed(bot: BotHarness, notification_id: str, timeout: float = 5.0) -> WebhookEvent:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        async with bot.runtime.bot.db.transaction() as session:
            row = await session.get(WebhookEvent, notification_id)
        if row is not None and row.processed_at is not None:
            return row
        assert time.monotonic() < deadline, f"event {notification_id} not processed in time"
        await asyncio.sleep(0.02)


async def event_count(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


async def customer_row(bot: BotHarness, kvk: str) -> Customer:
    async with bot.runtime.bot.db.transaction() as session:
        customer = await session.scalar(select(Customer).where(Customer.kvk == kvk))
    assert customer is not None
    return customer


async def invited(
    bot: BotHarness, kvk: str, name: str, env: Environment = Environment.PRODUCTION
) -> None:
    """A customer without tenant and with an open invitation (as `/brincr invite` leaves it)."""
    async with bot.runtime.bot.db.transaction() as session:
        customer = await add_customer(
            NewCustomer(kvk, name, env, None, ADMIN), session=session, state=State.INVITED
        )
        session.add(
            Invitation(customer_id=customer.id, code=CODE, language="en", invited_by=ADMIN,
                       created_at=customer.created_at, status="open")
        )  # fmt: skip


def own_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Every captured line but aiosqlite's: at DEBUG that driver echoes each statement with
    its parameters, the stored raw body included (``serve`` logs at INFO, where it is silent)."""
    return [r.getMessage() for r in caplog.records if not r.name.startswith("aiosqlite")]


def production_app(bot: BotHarness) -> str:
    client_id = bot.runtime.settings.production_client_id
    assert client_id
    return client_id


async def submit_view(
    bot: BotHarness, view: dict[str, Any], kvk: str, *, user: str = ADMIN
) -> httpx.Response:
    """A signed view_submission of the link picker with ``kvk`` selected."""
    selected = {"type": "static_select", "selected_option": {"value": kvk}}
    state = {"values": {PICK_BLOCK: {Action.LINK_CUSTOMER.value: selected}}}
    return await bot.view_submission({**view, "state": state}, user=user)


# --- the endpoint ----------------------------------------------------------------------


async def test_a_signed_delivery_is_accepted_and_processed(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = str(uuid.uuid4())
    await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    response, nid = await deliver(bot, ADDED, tenant)
    assert response.status_code == 202
    event = await processed(bot, nid)
    assert event.outcome == "checked 12345678: healthy"
    assert (event.event, event.tenant_id) == (ADDED, tenant)
    assert bot.sim.counters.token_requests(tenant_id=tenant) == 1
    (line,) = [m for m in own_log_lines(caplog) if nid in m]
    assert ADDED in line and tenant in line and "healthy" in line
    assert FIRST not in caplog.text and SECOND not in caplog.text
    assert not [m for m in own_log_lines(caplog) if BODY_MARKER in m]


@pytest.mark.parametrize("signature", ["wrong-secret", "not base64!", None])
async def test_a_wrong_or_missing_signature_is_refused_and_nothing_stored(
    bot: BotHarness, signature: str | None
) -> None:
    tenant = str(uuid.uuid4())
    await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    raw = b'{"tenantId": "x"}'
    headers = {"x-vwd-event-id": DELETED, "x-vwd-tenant-id": tenant, "x-vwd-notification-id": "n1"}
    if signature == "wrong-secret":
        headers["X-VWD-Signature-V1"] = sign_webhook("whsec-someone-else", raw)
    elif signature is not None:
        headers["X-VWD-Signature-V1"] = signature
    response = await bot.http.post(bot.url + "/webhooks/visma", content=raw, headers=headers)
    assert response.status_code == 401
    assert await event_count(bot) == 0
    assert (await customer_row(bot, "12345678")).state == State.PENDING


async def test_either_secret_is_accepted_during_rotation(bot: BotHarness) -> None:
    for secret in (FIRST, SECOND):
        response, nid = await deliver(bot, "tenant_renamed", str(uuid.uuid4()), secret=secret)
        assert response.status_code == 202, secret
        assert (await processed(bot, nid)).outcome == "ignored"


async def test_a_repeated_notification_is_processed_once(
    database_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(database_url, slack, sim, visma_webhook_secrets=FIRST)
    try:
        tenant = str(uuid.uuid4())
        await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
        nid = str(uuid.uuid4())
        answers = await asyncio.gather(
            *(deliver(bot, ADDED, tenant, notification_id=nid) for _ in range(3))
        )
        assert sorted(r.status_code for r, _ in answers) == [200, 200, 202]
        await processed(bot, nid)
        response, _ = await deliver(bot, ADDED, tenant, notification_id=nid)
        assert response.status_code == 200
        await bot.runtime.bot.tenant_events.stop()
        assert await event_count(bot) == 1
        assert sim.counters.token_requests(tenant_id=tenant) == 1
    finally:
        await bot.close()


async def test_an_unknown_event_type_is_accepted_logged_and_ignored(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response, nid = await deliver(bot, "tenant_application_renamed", str(uuid.uuid4()))
    assert response.status_code == 202
    assert (await processed(bot, nid)).outcome == "ignored"
    assert any(nid in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    assert not bot.slack.calls_to("chat.postMessage")
    assert bot.sim.counters.token_requests() == 0


async def test_a_body_that_is_not_json_is_accepted_when_the_headers_say_it_all(
    bot: BotHarness,
) -> None:
    tenant = str(uuid.uuid4())
    await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    response, nid = await deliver(bot, ADDED, tenant, body=b"\xff not json <at all>")
    assert response.status_code == 202
    event = await processed(bot, nid)
    assert event.outcome == "checked 12345678: healthy"


async def test_a_delivery_without_notification_id_is_a_bad_request(bot: BotHarness) -> None:
    raw = b"{}"
    headers = {"x-vwd-event-id": ADDED, "X-VWD-Signature-V1": sign_webhook(FIRST, raw)}
    response = await bot.http.post(bot.url + "/webhooks/visma", content=raw, headers=headers)
    assert response.status_code == 400
    assert "notification id" in response.json()["error"]
    assert await event_count(bot) == 0


async def test_a_body_over_256_kb_is_refused(bot: BotHarness) -> None:
    response, _ = await deliver(bot, ADDED, str(uuid.uuid4()), body=b"x" * (256 * 1024 + 1))
    assert response.status_code == 413
    assert await event_count(bot) == 0


async def test_without_secrets_the_endpoint_is_off(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim)
    try:
        response, _ = await deliver(bot, ADDED, str(uuid.uuid4()))
        assert response.status_code == 404
        assert await event_count(bot) == 0
    finally:
        await bot.close()


# --- tenant application added: matching invitations ------------------------------------


async def test_an_approval_matching_one_open_invitation_links_and_checks_it(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    await invited(bot, "12345678", "Bouwbedrijf De Vries")
    await invited(bot, "23456789", "Sandbox Klant", Environment.SANDBOX)  # other environment
    caplog.set_level(logging.DEBUG)  # after setup: aiosqlite logs INSERT parameters at DEBUG
    tenant = str(uuid.uuid4())
    bot.sim.approve(tenant, "production", list(SCOPES))

    response, nid = await deliver(bot, ADDED, tenant, application_id=production_app(bot))
    assert response.status_code == 202
    assert (await processed(bot, nid)).outcome == "linked to 12345678: healthy"
    customer = await customer_row(bot, "12345678")
    assert (customer.tenant_id, customer.state) == (tenant, State.HEALTHY)
    # one token request confirms the tenant grants a token, one is the check after linking
    assert bot.sim.counters.token_requests(tenant_id=tenant) == 2
    async with bot.runtime.bot.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry))
    assert entry is not None and (entry.user_id, entry.action) == ("visma-webhook", "link")
    assert CODE not in caplog.text
    assert not [m for m in own_log_lines(caplog) if BODY_MARKER in m]


async def test_an_approval_with_two_candidates_is_asked_and_linked_with_the_picker(
    bot: BotHarness,
) -> None:
    await invited(bot, "11111111", "Oudere Klant")
    await invited(bot, "12345678", "<!channel> & Zonen")
    tenant = str(uuid.uuid4())
    bot.sim.approve(tenant, "production", list(SCOPES))
    _, nid = await deliver(bot, ADDED, tenant, application_id=production_app(bot))
    assert (await processed(bot, nid)).outcome == f"unmatched (2 candidates): asked in {ALERTS}"

    await bot.runtime.bot.outbox.deliver_due()
    (post,) = await bot.slack.wait_for("chat.postMessage")
    assert post.params["channel"] == ALERTS
    assert f"tenant `{tenant}` (environment production) — which customer" in text_of(post.params)
    (actions,) = [b for b in post.params["blocks"] if b["type"] == "actions"]
    (link_button,) = actions["elements"]
    assert link_button["action_id"] == Action.LINK_PICK

    _, key = await bot.action(Action.LINK_PICK, link_button["value"], user=SUPPORT)
    assert "Only bot admins may link tenants" in text_of(await bot.reply(key))
    assert not bot.slack.calls_to("views.open")

    ts = post.response["ts"]
    await bot.action(
        Action.LINK_PICK, link_button["value"], user=ADMIN, channel=ALERTS,
        ephemeral=False, message_ts=ts,
    )  # fmt: skip
    (opened,) = await bot.slack.wait_for("views.open")
    view = bot.slack.views[opened.response["view"]["id"]]
    assert view["callback_id"] == View.LINK
    (select_block,) = [b for b in view["blocks"] if b["type"] == "input"]
    labels = [o["text"]["text"] for o in select_block["element"]["options"]]
    assert labels[0] == "&lt;!channel&gt; &amp; Zonen (KvK 12345678)"  # newest invitation first
    assert labels[1] == "Oudere Klant (KvK 11111111)"

    refused = await submit_view(bot, view, "12345678", user=SUPPORT)
    assert refused.json()["response_action"] == "errors"
    assert (await customer_row(bot, "12345678")).tenant_id is None

    answer = await submit_view(bot, view, "12345678")
    assert answer.status_code == 200 and not answer.content
    (update,) = await bot.slack.wait_for("chat.update")
    assert (update.params["channel"], update.params["ts"]) == (ALERTS, ts)
    text = text_of(update.params)
    assert f"Linked to *&lt;!channel&gt; &amp; Zonen* (KvK 12345678) by <@{ADMIN}>" in text
    assert "<!channel>" not in text
    customer = await customer_row(bot, "12345678")
    assert (customer.tenant_id, customer.state) == (tenant, State.HEALTHY)


async def test_the_picker_refuses_a_tenant_linked_meanwhile(bot: BotHarness) -> None:
    await invited(bot, "11111111", "Eerste Klant")
    await invited(bot, "12345678", "Tweede Klant")
    tenant = str(uuid.uuid4())
    bot.sim.approve(tenant, "production", list(SCOPES))
    _, nid = await deliver(bot, ADDED, tenant)  # unknown application: every environment
    await processed(bot, nid)
    await bot.runtime.bot.outbox.deliver_due()
    (post,) = await bot.slack.wait_for("chat.postMessage")
    assert "environment unknown" in text_of(post.params)
    value = next(b for b in post.params["blocks"] if b["type"] == "actions")["elements"][0]
    await bot.action(Action.LINK_PICK, value["value"], user=ADMIN)
    (opened,) = await bot.slack.wait_for("views.open")
    view = bot.slack.views[opened.response["view"]["id"]]
    _, key = await bot.command(f"link 11111111 {tenant}", user=ADMIN)
    await bot.reply(key)
    refused = await submit_view(bot, view, "12345678")
    errors = refused.json()["errors"]
    assert "already linked to *Eerste Klant*" in errors[PICK_BLOCK]
    assert (await customer_row(bot, "12345678")).tenant_id is None


# --- tenant application deleted --------------------------------------------------------


async def test_a_deleted_tenant_is_revoked_once_a_fresh_token_request_confirms_it(
    bot: BotHarness,
) -> None:
    tenant = str(uuid.uuid4())
    bot.sim.approve(tenant, "production", list(SCOPES))
    customer_id = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    await bot.runtime.bot.checker.check_customer(customer_id)
    before = bot.sim.counters.token_requests(tenant_id=tenant)
    bot.sim.remove(tenant)
    _, nid = await deliver(bot, DELETED, tenant)
    assert (await processed(bot, nid)).outcome == "revoked 12345678: confirmed by a token request"
    assert (await customer_row(bot, "12345678")).state == State.REVOKED
    assert bot.sim.counters.token_requests(tenant_id=tenant) == before + 1
    async with bot.runtime.bot.db.transaction() as session:
        change = await session.scalar(select(StateChange).order_by(StateChange.id.desc()))
    assert change is not None and change.to_state == State.REVOKED


async def test_a_deleted_for_a_tenant_that_still_grants_a_token_changes_nothing(
    bot: BotHarness,
) -> None:
    tenant = str(uuid.uuid4())
    bot.sim.approve(tenant, "production", list(SCOPES))
    customer_id = await bot.add_customer("12345678", "Bouwbedrijf", tenant_id=tenant)
    await bot.runtime.bot.checker.check_customer(customer_id)
    _, nid = await deliver(bot, DELETED, tenant)
    assert (await processed(bot, nid)).outcome == (
        "not confirmed: the tenant still grants a token (12345678: healthy)"
    )
    assert (await customer_row(bot, "12345678")).state == State.HEALTHY


async def test_a_deleted_unknown_tenant_is_recorded_as_such(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, nid = await deliver(bot, DELETED, str(uuid.uuid4()))
    assert (await processed(bot, nid)).outcome == "unknown tenant"
    assert any(nid in r.getMessage() and "unknown tenant" in r.getMessage() for r in caplog.records)
