"""The Slack stand-ins in tests/fakes behave like Slack for slack-sdk clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.demo.fake_slack import FakeSlack
from tests.fakes.socket_mode import FakeSocketModeServer


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


def client_for(fake: FakeSlack, **kwargs: object) -> AsyncWebClient:
    return AsyncWebClient(base_url=fake.api_url, token="xoxb-test", **kwargs)  # type: ignore[arg-type]


async def test_auth_test_and_recorded_call(fake: FakeSlack) -> None:
    resp = await client_for(fake).auth_test()
    assert resp["bot_id"] == "B0FAKE"
    assert resp["user_id"] == "U0BOT"
    assert resp["team_id"] == "T0FAKE"
    assert resp["team"] == "Fake Team"
    assert resp["url"].startswith("https://")
    assert resp.headers["x-oauth-scopes"]
    [call] = fake.calls_to("auth.test")
    assert call.token == "xoxb-test"
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert not call.failed


async def test_post_update_and_timeline(fake: FakeSlack) -> None:
    client = client_for(fake)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = await client.chat_postMessage(channel="C1", text="hello", blocks=blocks)
    second = await client.chat_postMessage(channel="C1", text="second")
    reply = await client.chat_postMessage(channel="C1", text="in thread", thread_ts=first["ts"])
    assert first["ok"] and first["channel"] == "C1"
    assert first["message"]["text"] == "hello"
    assert first["ts"] < second["ts"] < reply["ts"]
    assert len({first["ts"], second["ts"], reply["ts"]}) == 3
    assert first["ts"].count(".") == 1 and len(first["ts"].split(".")[1]) == 6

    updated = await client.chat_update(channel="C1", ts=first["ts"], text="hello, edited")
    assert updated["ts"] == first["ts"] and updated["text"] == "hello, edited"

    timeline = fake.messages("C1")
    assert [m["text"] for m in timeline] == ["hello, edited", "second", "in thread"]
    assert timeline[0]["blocks"] == blocks  # JSON body recorded as structures
    assert "edited" in timeline[0]
    assert timeline[2]["thread_ts"] == first["ts"]
    assert "thread_ts" not in timeline[1]
    assert fake.messages("C2") == []

    posted = fake.calls_to("chat.postMessage")[0]
    assert posted.params["blocks"] == blocks
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts="1.000000", text="x")
    assert err.value.response["error"] == "message_not_found"


async def test_form_encoded_bodies_are_decoded(fake: FakeSlack) -> None:
    client = client_for(fake)
    blocks = [{"type": "divider"}]
    await client.api_call(
        "chat.postMessage",
        data={"channel": "C9", "text": "form", "blocks": json.dumps(blocks)},
    )
    fake.add_user("U7")
    await client.api_call("users.info", http_verb="GET", params={"user": "U7"})
    [call] = fake.calls_to("chat.postMessage")
    assert call.params == {"channel": "C9", "text": "form", "blocks": blocks}
    assert fake.messages("C9")[0]["blocks"] == blocks
    [lookup] = fake.calls_to("users.info")
    assert lookup.params == {"user": "U7"} and lookup.headers["authorization"] == "Bearer xoxb-test"
    assert lookup.response["user"]["name"] == "u7"


async def test_missing_token_is_invalid_auth(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(base_url=fake.api_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"
    assert fake.calls_to("auth.test")[0].token is None


async def test_rate_limit_is_retried(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=429, retry_after=1, times=1)
    client = client_for(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    resp = await client.chat_postMessage(channel="C1", text="after the wait")
    assert resp["ok"]
    first, second = fake.calls_to("chat.postMessage")
    assert first.failed and first.status == 429 and first.response["error"] == "ratelimited"
    assert not second.failed
    assert second.at - first.at >= 1.0
    assert [m["text"] for m in fake.messages("C1")] == ["after the wait"]


async def test_rate_limit_without_retry_handler_raises(fake: FakeSlack) -> None:
    fake.fail(None, status=429, retry_after=7, times=1)
    with pytest.raises(SlackApiError) as err:
        await client_for(fake).chat_postMessage(channel="C1", text="x")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"
    assert (await client_for(fake).auth_test())["ok"]  # times=1: the next call goes through


async def test_server_error_is_retried(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=500, times=2)
    handler = AsyncServerErrorRetryHandler(
        max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )
    resp = await client_for(fake, retry_handlers=[handler]).chat_postMessage(channel="C", text="x")
    assert resp["ok"]
    assert [c.failed for c in fake.calls_to("chat.postMessage")] == [True, True, False]


async def test_error_answer_and_clear_failures(fake: FakeSlack) -> None:
    client = client_for(fake)
    fake.fail("chat.postMessage", error="channel_not_found")
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C404", text="x")
        assert err.value.response.status_code == 200
        assert err.value.response["error"] == "channel_not_found"
    assert (await client.auth_test())["ok"]  # other methods unaffected
    fake.clear_failures()
    assert (await client.chat_postMessage(channel="C404", text="x"))["ok"]
    assert [c.failed for c in fake.calls_to("chat.postMessage")] == [True, True, False]
    assert fake.messages("C404") and len(fake.messages("C404")) == 1


async def test_users_groups_dms_views(fake: FakeSlack) -> None:
    client = client_for(fake)
    fake.add_user("U1", "alice", tz="Europe/Amsterdam", is_admin=True)
    fake.add_usergroup("S1", ["U1", "U2"])

    user = (await client.users_info(user="U1"))["user"]
    assert user["name"] == "alice" and user["is_admin"] and user["tz"] == "Europe/Amsterdam"
    assert user["tz_offset"] in (3600, 7200)
    with pytest.raises(SlackApiError) as err:
        await client.users_info(user="U2")
    assert err.value.response["error"] == "user_not_found"
    assert (await client.usergroups_users_list(usergroup="S1"))["users"] == ["U1", "U2"]

    dm1 = (await client.conversations_open(users="U1"))["channel"]["id"]
    dm2 = (await client.conversations_open(users=["U1"]))["channel"]["id"]
    assert dm1 == dm2 == fake.dm_channel("U1") and dm1.startswith("D")
    posted = await client.chat_postMessage(channel="U1", text="psst")
    assert posted["channel"] == dm1
    assert [m["text"] for m in fake.messages(dm1)] == ["psst"]

    view = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
    opened = (await client.views_open(trigger_id="1.2.3", view=view))["view"]
    assert opened["id"].startswith("V") and opened["title"]["text"] == "T"
    view["title"]["text"] = "T2"  # type: ignore[index]
    updated = (await client.views_update(view_id=opened["id"], view=view))["view"]
    assert updated["id"] == opened["id"] and fake.views[opened["id"]]["title"]["text"] == "T2"
    pushed = (await client.views_push(trigger_id="1.2.4", view=view))["view"]
    assert pushed["id"] != opened["id"]
    home = {"type": "home", "blocks": []}
    h1 = (await client.views_publish(user_id="U1", view=home))["view"]
    h2 = (await client.views_publish(user_id="U1", view=home))["view"]
    assert h1["id"] == h2["id"] and h1["type"] == "home"

    eph = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert eph["message_ts"]
    link = await client.chat_getPermalink(channel="C1", message_ts=eph["message_ts"])
    assert link["permalink"].startswith("https://")
    assert (await client.reactions_add(channel="C1", timestamp="1.1", name="eyes"))["ok"]


async def test_wait_for_and_reset(fake: FakeSlack) -> None:
    client = client_for(fake)

    async def later() -> None:
        await asyncio.sleep(0.05)
        await client.chat_postMessage(channel="C1", text="one")
        await client.chat_postMessage(channel="C1", text="two")

    task = asyncio.create_task(later())
    calls = await fake.wait_for(
        "chat.postMessage", count=2, predicate=lambda c: c.params["channel"] == "C1"
    )
    await task
    assert [c.params["text"] for c in calls] == ["one", "two"]
    with pytest.raises(AssertionError, match=r"chat.postMessage"):
        await fake.wait_for("chat.delete", timeout=0.05)

    fake.reset()
    assert fake.calls == [] and fake.messages("C1") == []


async def test_response_url_is_recorded(fake: FakeSlack) -> None:
    response_url = f"{fake.response_url_base}1"
    async with aiohttp.ClientSession() as session:
        webhook = AsyncWebhookClient(response_url, session=session)
        resp = await webhook.send(text="done", response_type="ephemeral", replace_original=True)
    assert resp.status_code == 200
    [call] = await fake.wait_for("response_url")
    assert call.params["text"] == "done"
    assert call.params["replace_original"] is True
    assert call.params["_key"] == "1"


async def test_file_upload_v2(fake: FakeSlack) -> None:
    client = client_for(fake)
    resp = await client.files_upload_v2(channel="C1", content="a,b\n1,2\n", filename="x.csv")
    assert resp["ok"]
    [file_id] = fake.files
    assert fake.files[file_id] == b"a,b\n1,2\n"
    assert fake.calls_to("files.completeUploadExternal")[0].params["channel_id"] == "C1"


async def test_socket_mode_round_trip_and_reconnect(fake: FakeSlack) -> None:
    async with FakeSocketModeServer() as sm:
        fake.socket_url = sm.url
        seen: list[SocketModeRequest] = []

        async def on_request(client: SocketModeClient, req: SocketModeRequest) -> None:
            seen.append(req)
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id, payload={"text": "pong"})
            )

        client = SocketModeClient(
            app_token="xapp-test",
            web_client=AsyncWebClient(base_url=fake.api_url),
            ping_interval=1,
        )
        client.socket_mode_request_listeners.append(on_request)  # type: ignore[arg-type]
        try:
            await client.connect()
            await sm.wait_connected()
            assert sm.connections == 1
            [opened] = fake.calls_to("apps.connections.open")
            assert opened.token == "xapp-test"

            command = {"command": "/brincr", "text": "ping", "user_id": "U1", "channel_id": "C1"}
            envelope_id = await sm.send_envelope("slash_commands", command)
            ack = await sm.wait_ack(envelope_id)
            assert ack == {"envelope_id": envelope_id, "payload": {"text": "pong"}}
            assert seen[0].type == "slash_commands" and seen[0].payload == command

            await sm.drop_connections()
            await sm.wait_connections(2)
            assert sm.connections == 2
            assert len(fake.calls_to("apps.connections.open")) == 2

            envelope_id = await sm.send_envelope("events_api", {"event": {"type": "app_mention"}})
            assert (await sm.wait_ack(envelope_id))["envelope_id"] == envelope_id

            await sm.send_disconnect("refresh_requested")  # Slack's polite "please reconnect"
            await sm.wait_connections(3)
        finally:
            await client.close()


async def test_bolt_app_over_socket_mode(fake: FakeSlack) -> None:
    async with FakeSocketModeServer() as sm:
        fake.socket_url = sm.url
        app = AsyncApp(client=AsyncWebClient(base_url=fake.api_url, token="xoxb-test"))

        @app.command("/brincr")
        async def brincr(
            ack: AsyncAck, command: dict[str, str], client: AsyncWebClient, respond: AsyncRespond
        ) -> None:
            await ack("on it")
            await client.chat_postMessage(channel=command["channel_id"], text="status: green")
            await respond("done")

        handler = AsyncSocketModeHandler(app, "xapp-test")
        await handler.connect_async()
        try:
            payload = {
                "command": "/brincr",
                "text": "",
                "user_id": "U1",
                "channel_id": "C1",
                "team_id": "T0FAKE",
                "response_url": f"{fake.response_url_base}7",
                "trigger_id": "1.2.3",
            }
            envelope_id = await sm.send_envelope("slash_commands", payload)
            ack = await sm.wait_ack(envelope_id)
            assert ack["payload"]["text"] == "on it"
            [posted] = await fake.wait_for("chat.postMessage")
            assert posted.params["channel"] == "C1" and posted.params["text"] == "status: green"
            [responded] = await fake.wait_for("response_url")
            assert responded.params["text"] == "done"
            assert [m["text"] for m in fake.messages("C1")] == ["status: green"]
            assert fake.calls_to("auth.test")
        finally:
            await handler.close_async()
