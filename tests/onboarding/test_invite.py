"""``/brincr invite`` end to end: signed slash commands, view submissions and button clicks
through the real Bolt app, the outbox delivering to a fake Slack, checks against the
Visma/Brincr stand-in, a real database."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.core.clock import utcnow
from bot.demo.fake_slack import FakeSlack, SlackCall
from bot.domain import State
from bot.onboarding import invitations as invites
from bot.onboarding.forms import InviteForm
from bot.simulator import Simulator
from bot.slack.ids import Action, View
from storage.models import AuditEntry, Customer, Invitation, Notification
from tests.harness import (
    ADMIN,
    ALERTS,
    SCOPES,
    SUPPORT,
    SUPPORT_CHANNEL,
    BotHarness,
    start_bot,
    text_of,
)

CODE = "SECRET-CODE-7Q9X"
KVK = "12345678"
TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


# --- helpers ----------------------------------------------------------------------------


def form(**overrides: str | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {
        "name": "Bouwbedrijf De Vries B.V.",
        "kvk": "1234 56 78",
        "environment": "production",
        "code": CODE,
        "language": "nl",
        "contact": "Jan de Vries",
    }
    values.update(overrides)
    return values


def _state(values: dict[str, str | None]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for field, value in values.items():
        if field in ("environment", "language"):
            chosen = {"value": value, "text": {"type": "plain_text", "text": value}}
            element = {"type": "radio_buttons", "selected_option": chosen if value else None}
        else:
            element = {"type": "plain_text_input", "value": value}
        state[f"invite_{field}"] = {Action.INVITE_FIELD.value: element}
    return state


async def submit(
    bot: BotHarness,
    values: dict[str, str | None],
    *,
    user: str = ADMIN,
    channel: str = SUPPORT_CHANNEL,
) -> httpx.Response:
    """A view_submission of the invite modal, signed as Slack sends it."""
    view = {
        "id": "V0INVITE", "team_id": "T0FAKE", "type": "modal", "blocks": [],
        "callback_id": View.INVITE.value, "private_metadata": json.dumps({"channel": channel}),
        "state": {"values": _state(values)}, "hash": "1.fakehash",
        "title": {"type": "plain_text", "text": "Invite a customer"},
    }  # fmt: skip
    return await bot.view_submission(view, user=user)


def _handoff_call(call: SlackCall, channel: str = SUPPORT_CHANNEL) -> bool:
    return call.params.get("channel") == channel and not call.params.get("thread_ts")


async def handoff(bot: BotHarness, count: int = 1) -> SlackCall:
    """The (count-th) hand-off posted in the support channel, after the outbox delivered."""
    await bot.runtime.bot.outbox.deliver_due()
    calls = await bot.slack.wait_for("chat.postMessage", count, predicate=_handoff_call)
    return calls[count - 1]


async def invite_by_form(bot: BotHarness, **overrides: str | None) -> SlackCall:
    response = await submit(bot, form(**overrides))
    assert response.status_code == 200 and not response.content
    return await handoff(bot)


async def rows(bot: BotHarness, model: Any) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def the_invitation(bot: BotHarness) -> Invitation:
    async with bot.runtime.bot.db.transaction() as session:
        invitation = await session.scalar(select(Invitation).order_by(Invitation.id.desc()))
    assert invitation is not None
    return invitation


async def link_and_approve(bot: BotHarness, scopes: tuple[str, ...]) -> int:
    """The customer approved (with ``scopes``) and its tenant is linked; returns its id."""
    bot.sim.approve(TENANT, "production", list(scopes))
    async with bot.runtime.bot.db.transaction() as session:
        customer = await session.scalar(select(Customer).where(Customer.kvk == KVK))
        assert customer is not None
        customer.tenant_id, customer.state = TENANT, State.PENDING.value
        return customer.id


def button_value(call: SlackCall, action: Action) -> str:
    for block in call.params["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action.value:
                return str(element["value"])
    raise AssertionError(f"no {action} button")


def in_thread(ts: str) -> Any:
    return lambda c: c.params.get("thread_ts") == ts


# --- the modal --------------------------------------------------------------------------


async def test_invite_without_arguments_opens_the_modal(bot: BotHarness) -> None:
    response, _ = await bot.command("invite", user=ADMIN)
    assert response.status_code == 200
    (call,) = await bot.slack.wait_for("views.open")
    view = call.params["view"]
    assert view["callback_id"] == View.INVITE.value
    assert len(view["title"]["text"]) <= 24
    assert call.params["trigger_id"]
    block_ids = [b["block_id"] for b in view["blocks"]]
    assert block_ids == [f"invite_{field}" for field in form()]
    language = next(b for b in view["blocks"] if b["block_id"] == "invite_language")
    assert language["element"]["initial_option"]["value"] == "nl"
    assert json.loads(view["private_metadata"]) == {"channel": SUPPORT_CHANNEL}
    assert await rows(bot, Customer) == 0


@pytest.mark.parametrize(
    ("overrides", "bad"),
    [
        ({"name": "  ", "kvk": "1234", "code": "ab c"}, {"name", "kvk", "code"}),
        ({"name": "x" * 201}, {"name"}),
        ({"kvk": "123456789"}, {"kvk"}),
        ({"code": "abc"}, {"code"}),
        ({"code": "x" * 101}, {"code"}),
        ({"code": "AB\tCD12"}, {"code"}),
        ({"environment": None, "language": "de"}, {"environment", "language"}),
        ({"contact": "y" * 201}, {"contact"}),
    ],
)
async def test_a_bad_form_shows_errors_on_the_fields_and_stores_nothing(
    bot: BotHarness, overrides: dict[str, str | None], bad: set[str]
) -> None:
    response = await submit(bot, form(**overrides))
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {f"invite_{field}" for field in bad}
    assert CODE not in response.text
    for model in (Customer, Invitation, Notification, AuditEntry):
        assert await rows(bot, model) == 0, model


STEPS = {
    "nl": ("Visma Developer Portal", "Visma App Store", "KvK-nummer `12345678`", "*My apps*",
           "*Use invitation code*", f"`{CODE}`", "*Find*", "*ON*", "*Integrate*", "intrekken"),
    "en": ("Visma Developer Portal", "Visma App Store", "number: `12345678`", "*My apps*",
           "*Use invitation code*", f"`{CODE}`", "*Find*", "*ON*", "*Integrate*", "revoke"),
}  # fmt: skip
AUDIENCE = {
    ("nl", "production"): "Brincr-gebruiker.",
    ("en", "production"): "the Brincr user.",
    ("nl", "sandbox"): "sandbox-organisatie",
    ("en", "sandbox"): "sandbox organisation",
}


@pytest.mark.parametrize(("language", "environment"), list(AUDIENCE))
async def test_a_valid_form_posts_the_hand_off_with_every_step(
    bot: BotHarness, environment: str, language: str
) -> None:
    call = await invite_by_form(bot, environment=environment, language=language)
    text = text_of(call.params)
    for step in (*STEPS[language], AUDIENCE[(language, environment)]):
        assert step in text, step
    for scope in SCOPES:
        assert f"`{scope}`" in text
    assert "Waiting for the customer to approve" in text
    assert f"<@{ADMIN}>" in text and "<!date^" in text
    assert CODE not in call.params["text"]  # the notification fallback
    invitation = await the_invitation(bot)
    assert (invitation.status, invitation.language) == ("open", language)
    assert invitation.channel_id == SUPPORT_CHANNEL
    async with bot.runtime.bot.db.transaction() as session:
        customer = await session.scalar(select(Customer))
        row = await session.get(Notification, invitation.handoff_notification_id)
        audit = (await session.scalars(select(AuditEntry))).all()
    assert customer is not None and customer.state == State.INVITED
    assert (customer.name, customer.environment) == ("Bouwbedrijf De Vries B.V.", environment)
    assert row is not None and row.ts == call.response["ts"]
    assert [(a.user_id, a.action, a.target) for a in audit] == [(ADMIN, "invite", KVK)]
    assert CODE not in (audit[0].detail or "")


async def test_markup_in_the_customer_name_is_escaped(bot: BotHarness) -> None:
    call = await invite_by_form(bot, name="<!channel> & Co", contact="<@U999>")
    blocks = [b for b in call.params["blocks"] if b["type"] != "header"]
    text = text_of({"text": call.params["text"], "blocks": blocks})
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "&lt;!channel&gt; &amp; Co" in text


async def test_the_plain_text_button_answers_the_clicker_with_the_e_mail_text(
    bot: BotHarness,
) -> None:
    call = await invite_by_form(bot, language="en")
    value = button_value(call, Action.HANDOFF_TEXT)
    assert CODE not in value
    _, key = await bot.action(Action.HANDOFF_TEXT, value, user=SUPPORT, ephemeral=False)
    reply = await bot.reply(key)
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    text = text_of(reply)
    assert "```" in text and CODE in text
    assert '"My apps"' in text and "*My apps*" not in text
    assert CODE not in reply["text"]


# --- the short form ---------------------------------------------------------------------


async def test_the_short_form_creates_an_unknown_customer_in_production_dutch(
    bot: BotHarness,
) -> None:
    _, key = await bot.command(f"invite {KVK} {CODE}", user=ADMIN)
    reply = text_of(await bot.reply(key))
    assert "KvK 12345678" in reply and "/brincr invite" in reply and "language" in reply
    text = text_of((await handoff(bot)).params)
    assert "Brincr-gebruiker" in text and f"`{CODE}`" in text
    async with bot.runtime.bot.db.transaction() as session:
        customer = await session.scalar(select(Customer))
    assert customer is not None
    assert (customer.name, customer.environment, customer.state) == (
        "KvK 12345678", "production", "invited",
    )  # fmt: skip


async def test_the_short_form_reuses_a_linked_customer_and_keeps_its_state(
    bot: BotHarness,
) -> None:
    await bot.add_customer(KVK, "Timmerfabriek Noord", tenant_id=TENANT)
    _, key = await bot.command(f"invite 1234.5678 {CODE}", user=ADMIN)
    reply = text_of(await bot.reply(key))
    assert "Timmerfabriek Noord" in reply and "created" not in reply
    assert "Timmerfabriek Noord" in text_of((await handoff(bot)).params)
    async with bot.runtime.bot.db.transaction() as session:
        customer = await session.scalar(select(Customer))
        entry = await session.scalar(select(AuditEntry))
    assert customer is not None and customer.state == State.PENDING
    assert entry is not None and "reconnect" in (entry.detail or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("invite 12345678", "Which customer, and which invitation code?"),
        ("invite 1234 SECRET-CODE-7Q9X", "not a KvK number"),
        ("invite SECRET-CODE-7Q9X 12345678", "not a KvK number"),
        ("invite 12345678 abc", "4 to 100 characters"),
    ],
)
async def test_a_bad_short_form_is_refused_without_echoing_the_code(
    bot: BotHarness, text: str, expected: str
) -> None:
    _, key = await bot.command(text, user=ADMIN)
    reply = await bot.reply(key)
    assert reply["response_type"] == "ephemeral"
    assert expected in text_of(reply) and CODE not in text_of(reply)
    for model in (Customer, Invitation, Notification):
        assert await rows(bot, model) == 0


@pytest.mark.parametrize("text", ["invite", f"invite {KVK} {CODE}"])
async def test_a_non_admin_may_not_invite(bot: BotHarness, text: str) -> None:
    _, key = await bot.command(text, user=SUPPORT)
    reply = text_of(await bot.reply(key))
    assert "Only bot admins may invite customers" in reply and "BOT_ADMINS" in reply
    assert not bot.slack.calls_to("views.open")
    response = await submit(bot, form(), user=SUPPORT)
    assert "Only bot admins" in response.json()["errors"]["invite_name"]
    assert await rows(bot, Customer) == 0 and await rows(bot, Invitation) == 0


# --- tracking -------------------------------------------------------------------------


async def test_approval_updates_the_hand_off_and_tells_the_inviter(bot: BotHarness) -> None:
    ts = (await invite_by_form(bot)).response["ts"]
    customer_id = await link_and_approve(bot, SCOPES)
    for _ in range(2):  # a repeated check changes nothing more
        assert (await bot.runtime.bot.checker.check_customer(customer_id)).healthy
        await bot.runtime.bot.outbox.deliver_due()
    (updated,) = await bot.slack.wait_for("chat.update", predicate=lambda c: c.params["ts"] == ts)
    assert "Approved" in text_of(updated.params) and f"`{CODE}`" in text_of(updated.params)
    (reply,) = await bot.slack.wait_for("chat.postMessage", predicate=in_thread(ts))
    assert f"<@{ADMIN}> Customer Bouwbedrijf De Vries B.V." in reply.params["text"]
    assert "approved all scopes" in reply.params["text"]
    invitation = await the_invitation(bot)
    assert invitation.status == "approved" and invitation.approved_at is not None
    _, key = await bot.command(f"status {KVK}")
    assert "not approved yet" not in text_of(await bot.reply(key))


async def test_partial_approval_names_the_missing_scopes_once_per_change(
    bot: BotHarness,
) -> None:
    ts = (await invite_by_form(bot)).response["ts"]
    customer_id = await link_and_approve(bot, ("brincr:country",))
    checker = bot.runtime.bot.checker
    for _ in range(2):
        assert (await checker.check_customer(customer_id)).state == State.SCOPES_MISSING
        await bot.runtime.bot.outbox.deliver_due()
    bot.sim.approve(TENANT, "production", ["brincr:country", "brincr:category"])
    await checker.check_customer(customer_id)
    await bot.runtime.bot.outbox.deliver_due()
    updates = await bot.slack.wait_for("chat.update", 2, predicate=lambda c: c.params["ts"] == ts)
    assert len(updates) == 2
    assert "Partly approved*: missing `brincr:category`, `brincr:order`" in text_of(
        updates[0].params
    )
    assert "missing `brincr:order`" in text_of(updates[1].params)
    assert (await the_invitation(bot)).status == "open"
    assert not [c for c in bot.slack.calls_to("chat.postMessage") if in_thread(ts)(c)]


# --- stale invitations, resend, reconnect ------------------------------------------------


async def test_a_stale_invitation_is_reported_once_and_can_be_resent(bot: BotHarness) -> None:
    ts = (await invite_by_form(bot)).response["ts"]
    services = bot.runtime.bot.services
    assert await invites.nudge_stale_invitations(services, utcnow() + timedelta(days=6)) == 0
    later = utcnow() + timedelta(days=8)
    assert await invites.nudge_stale_invitations(services, later) == 1
    assert await invites.nudge_stale_invitations(services, later) == 0
    await bot.runtime.bot.outbox.deliver_due()
    (dm,) = await bot.slack.wait_for(
        "chat.postMessage", predicate=lambda c: c.params["channel"] == ADMIN
    )
    text = text_of(dm.params)
    assert "Bouwbedrijf De Vries B.V. (KvK 12345678) is still not approved after 7d" in text
    assert CODE not in text
    value = button_value(dm, Action.RESEND)

    _, key = await bot.action(Action.RESEND, value, user=SUPPORT, channel="D0ADMIN")
    assert "Only bot admins" in text_of(await bot.reply(key))
    _, key = await bot.action(Action.RESEND, value, user=ADMIN, channel="D0ADMIN")
    reply = await bot.reply(key)
    assert "Sent again" in text_of(reply) and reply["response_type"] == "ephemeral"
    await bot.runtime.bot.outbox.deliver_due()
    (again,) = await bot.slack.wait_for("chat.postMessage", predicate=in_thread(ts))
    assert f"Sent again by <@{ADMIN}>" in text_of(again.params)
    assert f"`{CODE}`" in text_of(again.params)


async def test_two_replicas_nudge_a_stale_invitation_once(
    database_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    one = await start_bot(database_url, slack, sim, worker_id="one")
    two = await start_bot(database_url, slack, sim, worker_id="two")
    try:
        form = InviteForm(KVK, CODE, "Bouw", None, "en", None)
        await invites.invite(
            one.runtime.bot.services, form, invited_by=ADMIN, channel_id=SUPPORT_CHANNEL
        )
        later = utcnow() + timedelta(days=8)
        counts = await asyncio.gather(
            *(invites.nudge_stale_invitations(b.runtime.bot.services, later) for b in (one, two))
        )
        assert sum(counts) == 1
        async with one.runtime.bot.db.transaction() as session:
            dms = await session.scalar(
                select(func.count()).select_from(Notification).where(Notification.kind == "dm")
            )
        assert dms == 1
    finally:
        await one.close()
        await two.close()


async def test_reconnect_instructions_go_to_the_alert_thread_or_channel(bot: BotHarness) -> None:
    customer_id = await bot.add_customer("23456789", "Zonder Uitnodiging")
    services = bot.runtime.bot.services
    # Without an invitation the re-approval steps go out (#13), not the hand-off.
    assert await invites.send_reconnect(
        services, customer_id, user_id=ADMIN, channel_id=ALERTS, thread_target_id=None
    )
    ts = (await invite_by_form(bot)).response["ts"]
    invitation = await the_invitation(bot)
    sent = await invites.send_reconnect(
        services, invitation.customer_id, user_id=ADMIN, channel_id=ALERTS, thread_target_id=None
    )
    assert sent
    await bot.runtime.bot.outbox.deliver_due()
    steps, post = await bot.slack.wait_for(
        "chat.postMessage", 2, predicate=lambda c: _handoff_call(c, ALERTS)
    )
    assert "My apps" in text_of(steps.params) and CODE not in text_of(steps.params)
    assert f"`{CODE}`" in text_of(post.params)
    await invites.send_reconnect(
        services, invitation.customer_id, user_id=ADMIN, channel_id=ALERTS,
        thread_target_id=invitation.handoff_notification_id,
    )  # fmt: skip
    await bot.runtime.bot.outbox.deliver_due()
    (reply,) = await bot.slack.wait_for("chat.postMessage", predicate=in_thread(ts))
    assert f"Sent again by <@{ADMIN}>" in text_of(reply.params)


async def test_status_and_app_home_show_the_open_invitation(bot: BotHarness) -> None:
    await invite_by_form(bot)
    _, key = await bot.command(f"status {KVK}")
    text = text_of(await bot.reply(key))
    assert f"Invitation sent by <@{ADMIN}>" in text and "not approved yet" in text
    await bot.event({"type": "app_home_opened", "user": SUPPORT, "tab": "home"})
    (call,) = await bot.slack.wait_for("views.publish")
    assert f"sent by <@{ADMIN}>" in text_of({"blocks": call.params["view"]["blocks"]})


async def test_a_new_invitation_replaces_the_open_one(bot: BotHarness) -> None:
    await invite_by_form(bot)
    await submit(bot, form(code="OTHER-CODE-1", language="en"))
    call = await handoff(bot, 2)
    assert "`OTHER-CODE-1`" in text_of(call.params)
    async with bot.runtime.bot.db.transaction() as session:
        statuses = (await session.scalars(select(Invitation.status).order_by(Invitation.id))).all()
    assert statuses == ["cancelled", "open"]


# --- logs -------------------------------------------------------------------------------


async def test_no_log_line_carries_the_invitation_code(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("slack_bolt", "slack_sdk", "httpx", "httpcore", "aiohttp", "bot", "handlers"):
        caplog.set_level(logging.DEBUG, logger=name)
    second = "SECOND-CODE-4K2P"
    await bot.command("invite", user=ADMIN)
    await bot.slack.wait_for("views.open")
    await submit(bot, form(kvk="nope"))
    ts = (await invite_by_form(bot)).response["ts"]
    call = await handoff(bot)
    _, key = await bot.action(Action.HANDOFF_TEXT, button_value(call, Action.HANDOFF_TEXT))
    assert CODE in text_of(await bot.reply(key))
    _, key = await bot.command(f"invite 23456789 {second}", user=ADMIN)
    await bot.reply(key)
    _, key = await bot.command(f"invite {second} 23456789", user=ADMIN)
    await bot.reply(key)
    customer_id = await link_and_approve(bot, SCOPES)
    await bot.runtime.bot.checker.check_customer(customer_id)
    assert await invites.nudge_stale_invitations(bot.runtime.bot.services, utcnow() + timedelta(8))
    open_one = await the_invitation(bot)
    _, key = await bot.action(Action.RESEND, str(open_one.id), user=ADMIN)
    await bot.reply(key)
    await bot.runtime.bot.outbox.deliver_due()
    await bot.slack.wait_for("chat.update", predicate=lambda c: c.params["ts"] == ts)
    await bot.slack.wait_for("chat.postMessage", 5)
    lines = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    assert [line for line in lines if "(body not logged)" in line]  # slack_sdk did log
    assert not [line for line in lines if CODE in line or second in line]
