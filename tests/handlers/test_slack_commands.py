"""The /brincr command end to end: signed requests through the real Bolt app over HTTP, a
fake Slack Web API recording what the bot sends, the Visma/Brincr stand-in, real SQLite."""

from __future__ import annotations

import json
import logging
import time

import pytest
from sqlalchemy import func, select

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from bot.slack.ids import Action
from storage.models import AuditEntry, Customer
from tests.harness import ADMIN, SUPPORT, BotHarness, start_bot, text_of


async def count_customers(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


async def test_status_shows_state_scopes_last_check_and_buttons(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf De Vries B.V.")
    response, key = await bot.command("check 12345678")
    assert response.status_code == 200
    final = await bot.reply(key, 2)
    text = text_of(final)
    assert "healthy" in text
    assert "Bouwbedrijf De Vries B.V." in text
    for scope in ("brincr:country", "brincr:category", "brincr:order"):
        assert scope in text
    assert "Visma Connect let us in; the Brincr API answered normally (HTTP 200)" in text
    assert "<!date^" in text
    assert "🟩" in text
    assert final["response_type"] == "ephemeral"
    assert final["replace_original"] is True
    actions = next(b for b in final["blocks"] if b["type"] == "actions")["elements"]
    assert {a["action_id"] for a in actions} == {Action.CHECK_NOW, Action.SHARE, Action.HISTORY}

    _, key = await bot.command("status 1234.56.78")
    assert "healthy" in text_of(await bot.reply(key))


async def test_status_names_each_missing_scope(bot: BotHarness) -> None:
    await bot.add_customer("23456789", "Aannemer Jansen", approve=("brincr:country",))
    _, key = await bot.command("check Jansen")
    text = text_of(await bot.reply(key, 2))
    assert "scopes_missing" in text
    assert "`brincr:category` missing" in text
    assert "`brincr:order` missing" in text
    assert ":white_check_mark: `brincr:country`" in text


async def test_a_customer_is_found_by_tenant_id_and_by_part_of_its_name(bot: BotHarness) -> None:
    tenant = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    await bot.add_customer("34567890", "Timmerfabriek Noord", tenant_id=tenant)
    for query in (tenant.upper(), "timmerfabriek", "Noord"):
        _, key = await bot.command(f"status {query}")
        assert "Timmerfabriek Noord" in text_of(await bot.reply(key)), query


@pytest.mark.parametrize(
    ("typed", "meant"), [("staus", "status"), ("lsit", "list"), ("histroy", "history")]
)
async def test_a_typo_gets_did_you_mean_and_the_one_usage_line(
    bot: BotHarness, typed: str, meant: str
) -> None:
    _, key = await bot.command(f"{typed} 12345678")
    reply = await bot.reply(key)
    text = text_of(reply)
    assert reply["response_type"] == "ephemeral"
    assert f"I don't know `{typed}`. Did you mean `{meant}`?" in text
    assert f"`/brincr {meant}" in text
    assert len([line for line in text.splitlines() if line.startswith("`/brincr ")]) == 1
    assert "/brincr snooze" not in text  # not the whole help


async def test_the_last_check_is_said_in_support_words_not_internal_codes(
    bot: BotHarness,
) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf", approve=("brincr:category",))
    await bot.add_customer("23456789", "Dakwerken", approve=None)  # unknown to Visma
    await bot.runtime.bot.checker.check_many([1, 2])
    _, key = await bot.command("status 12345678")
    text = text_of(await bot.reply(key))
    assert "Last check " in text and "Visma Connect refused or left out permissions we need" in text
    assert "token scopes" not in text and "token_outcome" not in text
    _, key = await bot.command("status 23456789")
    text = text_of(await bot.reply(key))
    assert "Visma Connect refused access to this customer (app removed or not approved)" in text


async def test_an_ambiguous_name_lists_the_candidates(bot: BotHarness) -> None:
    await bot.add_customer("11111111", "Bouw Oost")
    await bot.add_customer("22222222", "Bouw West")
    _, key = await bot.command("status Bouw")
    text = text_of(await bot.reply(key))
    assert "More than one customer matches" in text
    assert "11111111" in text and "22222222" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "/brincr status <customer>"),
        ("help", "/brincr list"),
        ("frobnicate now", "I don't know `frobnicate`"),
        ("status", "Which customer?"),
        ("status 1234567", "No customer matches"),
        ("check", "Which customer?"),
        ("list everything", "is not a list"),
        ("status " + "x" * 5000, "too long"),
        ("snooze 12345678 forever", "Only bot admins"),
    ],
)
async def test_bad_input_gets_a_helpful_ephemeral_reply(
    bot: BotHarness, text: str, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = await count_customers(bot)
    response, key = await bot.command(text)
    assert response.status_code == 200
    reply = await bot.reply(key)
    assert reply["response_type"] == "ephemeral"
    assert expected in text_of(reply)
    assert await count_customers(bot) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_admin_bad_duration_is_refused_and_nothing_stored(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    _, key = await bot.command("snooze 12345678 forever", user=ADMIN)
    assert "is not a duration" in text_of(await bot.reply(key))
    _, key = await bot.command("snooze 12345678 90d", user=ADMIN)
    assert "30 days" in text_of(await bot.reply(key))
    async with bot.runtime.bot.db.transaction() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None and customer.snoozed_until is None
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0


async def test_snooze_and_unsnooze_by_an_admin_are_audited(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    _, key = await bot.command("snooze 12345678 4h", user=ADMIN)
    assert "snoozed until <!date^" in text_of(await bot.reply(key))
    _, key = await bot.command("status 12345678")
    assert ":zzz: snoozed until" in text_of(await bot.reply(key))
    _, key = await bot.command("unsnooze 12345678", user=ADMIN)
    assert "on again" in text_of(await bot.reply(key))
    async with bot.runtime.bot.db.transaction() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(e.user_id, e.action, e.target) for e in entries] == [
        (ADMIN, "snooze", "12345678"),
        (ADMIN, "unsnooze", "12345678"),
    ]


async def test_slack_markup_in_a_name_pings_nobody(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "<!channel> & <@U123> Bouw")
    _, key = await bot.command("status 12345678")
    reply = await bot.reply(key)
    # Header blocks are plain_text, which Slack never parses for mentions.
    text = text_of({**reply, "blocks": [b for b in reply["blocks"] if b["type"] != "header"]})
    assert "<!channel>" not in text and "<@U123>" not in text
    assert "&lt;!channel&gt; &amp; &lt;@U123&gt; Bouw" in text
    _, key = await bot.command("list")
    assert "<!channel>" not in text_of(await bot.reply(key))


@pytest.mark.parametrize(
    "command",
    [
        "status 1`<!channel>`2",
        "history <!here|all>",
        "snooze 12345678 4`<!channel>`h",
        "link 12345678 x`<https://evil.example|Re-approve>`y",
    ],
)
async def test_markup_typed_into_a_command_comes_back_inert(bot: BotHarness, command: str) -> None:
    """A refusal repeats the bad value: shown in a code span with ``&``, ``<`` and ``>``
    escaped and backticks as look-alikes, so it pings, links and closes nothing."""
    await bot.add_customer("12345678", "Bouwbedrijf Echo")
    _, key = await bot.command(command, user=ADMIN)
    reply = await bot.reply(key)
    said = [reply["text"], *(block_text for block_text in [text_of(reply)])]
    for text in said:
        assert "<!" not in text and "<https" not in text, text
        assert "&lt;" in text, text


async def test_list_is_worst_first_with_counts_and_pages(bot: BotHarness) -> None:
    for i in range(25):
        await bot.add_customer(f"100000{i:02d}", f"Klant {i:02d}")
    await bot.add_customer("99999999", "Kapotte Klant", approve=None)  # unknown tenant: revoked
    await bot.runtime.bot.checker.check_many(list(range(1, 27)))
    _, key = await bot.command("list")
    first = await bot.reply(key)
    text = text_of(first)
    assert "All customers (26 of 26)" in text
    assert "revoked 1" in text and "healthy 25" in text
    assert text.index("Kapotte Klant") < text.index("Klant 00")
    nav = next(b for b in first["blocks"] if b["type"] == "actions")["elements"]
    assert [e["text"]["text"] for e in nav] == ["Next (21–26) ▶"]
    _, key = await bot.action(Action.LIST_PAGE, nav[0]["value"])
    second = await bot.reply(key)
    assert second["replace_original"] is True
    assert "Klant 24" in text_of(second) and "Kapotte" not in text_of(second)
    _, key = await bot.command("list revoked")
    assert "Customers who removed the app (1 of 26)" in text_of(await bot.reply(key))
    for which in ("problems", "failing"):  # `failing` keeps working, titled for what it shows
        _, key = await bot.command(f"list {which}")
        text = text_of(await bot.reply(key))
        assert "Customers with a problem (1 of 26)" in text
        assert "Showing revoked, scopes_missing, failing or unknown" in text
        assert "Customers: failing" not in text


async def test_check_now_button_refreshes_the_status(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    before = bot.sim.counters.token_requests()
    response, key = await bot.action(Action.CHECK_NOW, "12345678")
    assert response.status_code == 200
    reply = await bot.reply(key)
    assert "healthy" in text_of(reply) and reply["replace_original"] is True
    assert bot.sim.counters.token_requests() == before + 1


async def test_share_posts_the_status_in_channel_without_buttons(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    _, key = await bot.action(Action.SHARE, "12345678")
    reply = await bot.reply(key)
    assert reply["response_type"] == "in_channel"
    assert f"Shared by <@{SUPPORT}>" in text_of(reply)
    assert not [b for b in reply["blocks"] if b["type"] == "actions"]


async def test_sharing_a_customer_is_throttled_per_channel_so_five_presses_ping_once(
    bot: BotHarness,
) -> None:
    """Issue 19, finding 12: each share posts for everyone and mentions the account manager."""
    await bot.add_customer("12345678", "Bouwbedrijf", account_manager="U0MANAGER")
    answers = []
    for _ in range(5):
        _, key = await bot.action(Action.SHARE, "12345678")
        answers.append(await bot.reply(key))
    shared = [a for a in answers if a.get("response_type") == "in_channel"]
    assert len(shared) == 1 and "<@U0MANAGER>" in text_of(shared[0])
    refused = [text_of(a) for a in answers if a.get("response_type") != "in_channel"]
    assert len(refused) == 4 and "<@U0MANAGER>" not in "".join(refused)
    assert "*Bouwbedrijf* was shared in this channel" in refused[0]
    assert "the next is possible <!date^" in refused[0]
    _, key = await bot.action(Action.SHARE, "12345678", channel="C0OTHER")  # another channel
    assert (await bot.reply(key)).get("response_type") == "in_channel"


async def test_forget_needs_an_admin_and_a_confirmation(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    _, key = await bot.command("forget 12345678")
    assert "Only bot admins may remove customers" in text_of(await bot.reply(key))
    _, key = await bot.command("forget 12345678", user=ADMIN)
    confirm = await bot.reply(key)
    assert "cannot be undone" in text_of(confirm)
    assert await count_customers(bot) == 1
    _, key = await bot.action(Action.FORGET_CONFIRM, "12345678", user=SUPPORT)
    assert "Only bot admins" in text_of(await bot.reply(key))
    assert await count_customers(bot) == 1
    _, key = await bot.action(Action.FORGET_CANCEL, "12345678", user=ADMIN)
    assert "nothing was removed" in text_of(await bot.reply(key))
    _, key = await bot.action(Action.FORGET_CONFIRM, "12345678", user=ADMIN)
    assert "Removed *Bouwbedrijf*" in text_of(await bot.reply(key))
    assert await count_customers(bot) == 0
    async with bot.runtime.bot.db.transaction() as session:
        entry = await session.scalar(select(AuditEntry))
    assert entry is not None and (entry.user_id, entry.action) == (ADMIN, "forget")


async def test_admins_may_be_named_by_user_group(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    slack.add_usergroup("S0ONCALL", ["U0GROUPIE"])
    bot = await start_bot(sqlite_url, slack, sim, bot_admins="S0ONCALL")
    try:
        await bot.add_customer("12345678", "Bouwbedrijf")
        _, key = await bot.command("forget 12345678", user="U0GROUPIE")
        assert "cannot be undone" in text_of(await bot.reply(key))
        _, key = await bot.command("forget 12345678", user="U0OTHER")
        assert "<!subteam^S0ONCALL>" in text_of(await bot.reply(key))
    finally:
        await bot.close()


async def test_without_admins_changing_commands_say_how_to_set_them(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, bot_admins="")
    try:
        await bot.add_customer("12345678", "Bouwbedrijf")
        for text in ("forget 12345678", "snooze 12345678 1d", "invite"):
            _, key = await bot.command(text, user=ADMIN)
            reply = text_of(await bot.reply(key))
            assert "No bot admins are configured" in reply and "`BOT_ADMINS`" in reply, text
        _, key = await bot.action(Action.FORGET_CONFIRM, "12345678", user=ADMIN)
        assert "No bot admins are configured" in text_of(await bot.reply(key))
        assert await count_customers(bot) == 1
    finally:
        await bot.close()


async def test_app_home_shows_the_fleet(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Gezonde Klant")
    await bot.add_customer("23456789", "Kapotte Klant", approve=None)
    await bot.runtime.bot.checker.check_many([1, 2])
    response = await bot.event({"type": "app_home_opened", "user": SUPPORT, "tab": "home"})
    assert response.status_code == 200
    (call,) = await bot.slack.wait_for("views.publish")
    assert call.params["user_id"] == SUPPORT
    view = call.params["view"]
    assert view["type"] == "home"
    text = text_of({"blocks": view["blocks"]})
    assert "*2* customers" in text
    assert "Kapotte Klant" in text
    assert len(view["blocks"]) <= 100


# --- signatures -----------------------------------------------------------------------

SLACK_DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700"
    "885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2"
    "c447fce8b6703c"
)
SLACK_DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_slacks_published_signing_example_computes_as_documented() -> None:
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier("8f742231b10e8888abcd99yyyzzz85a5")
    assert verifier.generate_signature(timestamp="1531420618", body=SLACK_DOC_BODY) == (
        SLACK_DOC_SIGNATURE
    )


async def test_slacks_example_sent_today_is_refused_because_it_is_old(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(
        sqlite_url, slack, sim, slack_signing_secret="8f742231b10e8888abcd99yyyzzz85a5"
    )
    try:
        response = await bot.http.post(
            bot.url + "/slack/events",
            content=SLACK_DOC_BODY,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": "1531420618",
                "X-Slack-Signature": SLACK_DOC_SIGNATURE,
            },
        )
        assert response.status_code == 401
        assert not slack.calls_to("response_url")
    finally:
        await bot.close()


async def test_forged_and_stale_signatures_get_401_and_change_nothing(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    body = "command=%2Fbrincr&text=forget+12345678&user_id=U0ADMIN&response_url=x"
    headers = bot.signed_headers(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    forged = await bot.http.post(
        bot.url + "/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    assert forged.status_code == 401
    stale = await bot.post(
        body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 301
    )
    assert stale.status_code == 401
    missing = await bot.http.post(bot.url + "/slack/events", content=body)
    assert missing.status_code == 401
    assert await count_customers(bot) == 1
    assert not bot.slack.calls_to("response_url")


async def test_health_and_readiness_endpoints(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim, schedule=True)
    try:
        assert (await bot.http.get(bot.url + "/healthz")).status_code == 200
        ready = await bot.http.get(bot.url + "/readyz")
        assert ready.status_code == 200, ready.text
        checks = ready.json()["checks"]
        assert set(checks) == {"database", "scheduler"}  # Slack delivery is not readiness
        assert all(check["ok"] for check in checks.values())
        metrics = await bot.http.get(bot.url + "/metrics")
        assert metrics.status_code == 200
        assert "brincr_customers" in metrics.text
    finally:
        await bot.close()


async def test_readiness_is_503_while_the_scheduler_is_not_running(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    ready = await bot.http.get(bot.url + "/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["scheduler"] == {"ok": False, "detail": "failing"}
    assert "not ready: scheduler: scheduler not running" in caplog.text  # the detail: logged
    assert json.loads(ready.text)["checks"]["database"]["ok"] is True


async def test_a_reply_rate_limited_by_slack_is_retried_not_lost(bot: BotHarness) -> None:
    await bot.add_customer("12345678", "Bouwbedrijf")
    bot.slack.fail("response_url", status=429, times=2, retry_after=0)
    _, key = await bot.command("status 12345678")
    replies = await bot.replies(key, 3, timeout=10)  # two refused, the third delivered
    assert "Bouwbedrijf" in text_of(replies[2])
    assert [c.failed for c in bot.slack.calls_to("response_url")] == [True, True, False]


async def test_emoji_and_markup_in_a_name_are_shown_as_typed_and_ping_nobody(
    bot: BotHarness,
) -> None:
    await bot.add_customer("12345678", "Bouw 🏗️ & Sloop <@U0ADMIN> :tada:")
    _, key = await bot.command("status 🏗️")
    reply = await bot.reply(key)
    text = text_of({**reply, "blocks": [b for b in reply["blocks"] if b["type"] != "header"]})
    assert "Bouw 🏗️ &amp; Sloop &lt;@U0ADMIN&gt; :tada:" in text
    assert "<@U0ADMIN>" not in text.replace("Account manager: <@U0ADMIN>", "")
