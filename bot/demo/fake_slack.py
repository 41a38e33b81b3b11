"""A local stand-in for the Slack Web API, good enough for a Bolt app and slack-sdk clients:
the one fake Slack of the project, used by the demo (:mod:`bot.demo.slack`) and by the tests.

Point a client at it with ``AsyncWebClient(base_url=fake.api_url, token="xoxb-...")`` (or set
``SLACK_API_URL`` to ``fake.api_url``). Every request is recorded as a :class:`SlackCall`; posted
messages are kept per channel so a test can read the timeline back with :meth:`FakeSlack.messages`.

Failures are injected with :meth:`FakeSlack.fail`: an HTTP status (429 adds ``Retry-After``) or an
``{"ok": false, "error": ...}`` answer, for the next ``times`` calls to one method or to any.
Observers (:attr:`FakeSlack.observers`) see every call once it is answered: the demo prints
what the bot sent from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from aiohttp import web

BOT_ID = "B0FAKE"
BOT_USER_ID = "U0BOT"
TEAM_ID = "T0FAKE"
TEAM_NAME = "Fake Team"
APP_ID = "A0FAKE"
TEAM_URL = "https://fake-team.slack.com/"
BOT_SCOPES = (
    "channels:read,chat:write,chat:write.public,commands,groups:read,im:write,users:read,"
    "usergroups:read"
)

# Parameters slack-sdk sends as JSON strings inside form bodies; decoded before recording.
_JSON_PARAMS = frozenset(
    {
        "attachments",
        "blocks",
        "files",
        "metadata",
        "prompts",
        "unfurls",
        "user_auth_blocks",
        "view",
    }
)
# Message fields kept from chat.postMessage / chat.update parameters.
_MESSAGE_FIELDS = (
    "text",
    "blocks",
    "attachments",
    "metadata",
    "thread_ts",
    "reply_broadcast",
    "username",
    "icon_emoji",
    "icon_url",
)
_TOKEN_PREFIXES = ("xoxb-", "xoxp-", "xapp-", "xoxe-")

Answer = tuple[int, dict[str, Any]]


@dataclass
class SlackCall:
    """One request the fake received."""

    method: str  # "chat.postMessage"; "response_url" / "file_upload" for the non-API endpoints
    params: dict[str, Any]  # query + form / JSON body, JSON strings (blocks, view, ...) decoded
    headers: dict[str, str]  # header names lower-cased
    at: float  # time.monotonic() on arrival
    failed: bool = False  # answered by an injected failure (see FakeSlack.fail)
    token: str | None = None  # the bearer token (or form ``token``), if any
    verb: str = "POST"  # the HTTP method: slack-sdk sends read methods (conversations.info) as GET
    status: int = 200  # HTTP status answered
    response: Any = None  # the body answered (a dict for the Web API)


@dataclass
class _Failure:
    method: str | None
    status: int
    times: int | None
    retry_after: int | None
    error: str | None
    channel: str | None = None  # only calls for this channel (a user ID for a DM)
    page: str | None = None  # answer with an error page of this content type, not Slack JSON


@dataclass
class _User:
    id: str
    name: str
    tz: str
    is_admin: bool
    real_name: str
    email: str | None
    is_bot: bool = False
    deleted: bool = False

    def to_dict(self) -> dict[str, Any]:
        zone = ZoneInfo(self.tz)
        now = datetime.now(zone)
        offset = now.utcoffset()
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "team": TEAM_ID,
        }
        if self.email is not None:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": self.deleted,
            "tz": self.tz,
            "tz_label": now.tzname() or self.tz,
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": profile,
        }


@dataclass
class _Usergroup:
    id: str
    handle: str
    members: list[str] = field(default_factory=list)

    def to_dict(self, include_users: bool) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "name": self.handle,
            "handle": self.handle,
            "user_count": len(self.members),
            "date_delete": 0,
        }
        if include_users:
            d["users"] = list(self.members)
        return d


def _ok(**fields: Any) -> Answer:
    return 200, {"ok": True, **fields}


def _error(error: str, **fields: Any) -> Answer:
    return 200, {"ok": False, "error": error, **fields}


def _decode_json_params(params: dict[str, Any]) -> dict[str, Any]:
    for key in _JSON_PARAMS.intersection(params):
        value = params[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


class FakeSlack:
    """A real HTTP server on 127.0.0.1 answering Slack Web API methods from in-memory state."""

    def __init__(self) -> None:
        self.url: str = ""
        self.api_url: str = ""
        self.response_url_base: str = ""
        self.socket_url: str | None = None
        self.calls: list[SlackCall] = []
        self.observers: list[Callable[[SlackCall], None]] = []  # called with each answered call
        self.files: dict[str, bytes] = {}  # file_id -> bytes uploaded via files_upload_v2
        self.views: dict[str, dict[str, Any]] = {}  # view id -> current view
        self._runner: web.AppRunner | None = None
        self._failures: list[_Failure] = []
        self._users: dict[str, _User] = {}
        self._usergroups: dict[str, _Usergroup] = {}
        self._timeline: dict[str, list[dict[str, Any]]] = {}
        self._home_views: dict[str, str] = {}  # user id -> view id published to their Home tab
        self.outside_channels: set[str] = set()  # conversations.info: the bot is not a member
        self._seq = 0  # message timestamps and other ids; never reset, so ts stay unique
        self._handlers: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.scheduleMessage": self._chat_schedule_message,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "views.open": self._views_open,
            "views.push": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self.api_url = self.url + "/api/"
        self.response_url_base = self.url + "/response/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def calls_to(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - polling helper; the deadline is the point
        predicate: Callable[[SlackCall], bool] | None = None,
    ) -> list[SlackCall]:
        """Wait until ``count`` calls to ``method`` (matching ``predicate``) were received.

        Returns every matching call so far (failed ones included). Raises AssertionError with a
        summary of all calls seen when ``timeout`` passes first.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.calls_to(method) if predicate is None or predicate(c)]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                what = f"{count} call(s) to {method}" + (" matching" if predicate else "")
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what}; got {len(found)}.\n"
                    f"Calls seen:\n{self.summary()}"
                )
            await asyncio.sleep(0.01)

    def summary(self) -> str:
        """One line per recorded call, for assertion messages."""
        if not self.calls:
            return "  (none)"
        t0 = self.calls[0].at
        lines = []
        for c in self.calls:
            params = {k: v for k, v in c.params.items() if k not in ("blocks", "view")}
            text = json.dumps(params, default=str)
            if len(text) > 160:
                text = text[:157] + "..."
            flag = " FAILED" if c.failed else ""
            lines.append(f"  +{c.at - t0:.3f}s {c.method} [{c.status}{flag}] {text}")
        return "\n".join(lines)

    def fail(
        self,
        method: str | None,
        *,
        status: int = 500,
        times: int | None = None,
        retry_after: int | None = None,
        error: str | None = None,
        channel: str | None = None,
        page: str | None = None,
    ) -> None:
        """Fail the next ``times`` calls (None: until clear_failures) to ``method`` (None: any),
        with ``channel`` only those whose ``channel`` parameter is that (a user ID for a DM).

        With ``error`` the answer is HTTP 200 ``{"ok": false, "error": error}``; otherwise HTTP
        ``status`` (429 answers ``ratelimited`` with a ``Retry-After`` header, default 1 second).
        With ``page`` (a content type: ``text/html``, ``text/plain``, or ``application/json``
        for a page mislabelled as JSON) the answer is HTTP ``status`` with an error page instead
        of Slack's JSON, as Slack's edge or a proxy answers during an outage. Rules added first
        are consulted first.
        """
        self._failures.append(
            _Failure(method, status, times, retry_after, error, channel, page=page)
        )

    def clear_failures(self) -> None:
        self._failures.clear()

    def reset(self) -> None:
        """Forget calls, messages, views, files and failures; users, groups and socket_url stay."""
        self.calls.clear()
        self.files.clear()
        self.views.clear()
        self._failures.clear()
        self._timeline.clear()
        self._home_views.clear()

    def answer(self, method: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Answer ``method`` with ``handler(params)`` as the JSON body (HTTP 200)."""
        self._handlers[method] = lambda params: (200, handler(params))

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        tz: str = "Europe/Amsterdam",
        is_admin: bool = False,
        *,
        real_name: str | None = None,
        email: str | None = None,
    ) -> None:
        """Make ``user_id`` known to users.info / users.list (name defaults to the id, lowered)."""
        name = name if name is not None else user_id.lower()
        self._users[user_id] = _User(
            id=user_id,
            name=name,
            tz=tz,
            is_admin=is_admin,
            real_name=real_name if real_name is not None else name,
            email=email,
        )

    def add_usergroup(self, group_id: str, members: list[str], handle: str | None = None) -> None:
        self._usergroups[group_id] = _Usergroup(group_id, handle or group_id.lower(), list(members))

    def dm_channel(self, user_id: str) -> str:
        """The stable DM channel id conversations.open answers for ``user_id``."""
        return "D" + user_id

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's timeline, oldest first: current version of each message (copies).

        Updates are applied in place, deleted messages are gone, thread replies carry thread_ts.
        A user id (``U...``) reads that user's DM channel.
        """
        return copy.deepcopy(self._timeline.get(self._resolve_channel(channel), []))

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.body_exists:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        params[key] = {"filename": value.filename, "size": len(value.file.read())}
                    else:
                        params[key] = value
        _decode_json_params(params)
        headers = {k.lower(): v for k, v in request.headers.items()}
        token = None
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip() or None
        if "token" in params:
            form_token = params.pop("token")
            token = token or (str(form_token) if form_token else None)
        call = SlackCall(
            method=method, params=params, headers=headers, at=time.monotonic(), token=token,
            verb=request.method,
        )  # fmt: skip
        self.calls.append(call)

        failure = self._take_failure(method, str(params.get("channel") or ""))
        extra_headers: dict[str, str] = {}
        if failure is not None and failure.page is not None:
            call.failed, call.status = True, failure.status
            call.response = f"<html><body><h1>{failure.status} Unavailable</h1></body></html>"
            self._observe(call)
            return web.Response(status=call.status, text=call.response, content_type=failure.page)
        if failure is not None:
            call.failed = True
            status, body, extra_headers = self._failure_answer(failure)
        elif token is None or not token.startswith(_TOKEN_PREFIXES):
            status, body = _error("invalid_auth")
        elif method == "apps.connections.open" and not token.startswith("xapp-"):
            status, body = _error("not_allowed_token_type")
        else:
            handler = self._handlers.get(method)
            status, body = handler(params) if handler is not None else _ok()
            if method == "auth.test":
                extra_headers["x-oauth-scopes"] = BOT_SCOPES
        call.status, call.response = status, body
        self._observe(call)
        return web.json_response(body, status=status, headers=extra_headers)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        return await self._record_side_channel(request, "response_url")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        return await self._record_side_channel(request, "file_upload")

    async def _record_side_channel(self, request: web.Request, method: str) -> web.Response:
        raw = await request.read()
        params: dict[str, Any]
        if method == "file_upload":
            file_id = request.match_info["file_id"]
            params = {"file_id": file_id, "size": len(raw)}
        else:
            try:
                decoded = json.loads(raw) if raw else {}
            except ValueError:
                decoded = {"_raw": raw.decode("utf-8", "replace")}
            params = decoded if isinstance(decoded, dict) else {"_body": decoded}
            params["_key"] = request.match_info["key"]
        call = SlackCall(
            method=method,
            params=params,
            headers={k.lower(): v for k, v in request.headers.items()},
            at=time.monotonic(),
        )
        self.calls.append(call)
        failure = self._take_failure(method)
        if failure is not None:
            call.failed = True
            status, body, headers = self._failure_answer(failure)
            call.status, call.response = status, body
            return web.json_response(body, status=status, headers=headers)
        if method == "file_upload":
            self.files[params["file_id"]] = raw
            call.response = f"OK - {len(raw)}"
            return web.Response(text=call.response, content_type="text/plain")
        call.response = {"ok": True}
        self._observe(call)
        return web.json_response(call.response)

    def _observe(self, call: SlackCall) -> None:
        for observer in self.observers:
            observer(call)

    def _take_failure(self, method: str, channel: str = "") -> _Failure | None:
        for failure in self._failures:
            if failure.channel is not None and failure.channel != channel:
                continue
            if failure.method is None or failure.method == method:
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                return failure
        return None

    @staticmethod
    def _failure_answer(failure: _Failure) -> tuple[int, dict[str, Any], dict[str, str]]:
        if failure.error is not None:
            return 200, {"ok": False, "error": failure.error}, {}
        if failure.status == 429:
            retry_after = failure.retry_after if failure.retry_after is not None else 1
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
        return failure.status, {"ok": False, "error": "fatal_error"}, headers

    # ------------------------------------------------------------------ state helpers

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}0{self._seq:08d}"

    def _next_ts(self) -> str:
        self._seq += 1
        micros = self._seq * 100
        return f"{1700000000 + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _resolve_channel(self, channel: str) -> str:
        # Posting to a user id lands in the DM with that user, as on Slack.
        if channel[:1] in ("U", "W"):
            return self.dm_channel(channel)
        return channel

    def _find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for msg in self._timeline.get(channel, []):
            if msg["ts"] == ts:
                return msg
        return None

    # ------------------------------------------------------------------ method handlers

    def _auth_test(self, params: dict[str, Any]) -> Answer:
        return _ok(
            url=TEAM_URL,
            team=TEAM_NAME,
            user="fakebot",
            team_id=TEAM_ID,
            user_id=BOT_USER_ID,
            bot_id=BOT_ID,
            is_enterprise_install=False,
        )

    def _apps_connections_open(self, params: dict[str, Any]) -> Answer:
        if self.socket_url is None:
            return _error("socket_mode_not_configured_in_fake")
        return _ok(url=self.socket_url)

    def _chat_post_message(self, params: dict[str, Any]) -> Answer:
        channel = params.get("channel")
        if not channel:
            return _error("channel_not_found")
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            return _error("no_text")
        channel = self._resolve_channel(str(channel))
        ts = self._next_ts()
        msg: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": "",
            "ts": ts,
        }
        for key in _MESSAGE_FIELDS:
            if params.get(key) not in (None, ""):
                msg[key] = params[key]
        self._timeline.setdefault(channel, []).append(msg)
        return _ok(channel=channel, ts=ts, message=copy.deepcopy(msg))

    def _chat_update(self, params: dict[str, Any]) -> Answer:
        channel = self._resolve_channel(str(params.get("channel", "")))
        msg = self._find_message(channel, str(params.get("ts", "")))
        if msg is None:
            return _error("message_not_found")
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                msg[key] = params[key]
        msg["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        return _ok(
            channel=channel, ts=msg["ts"], text=msg.get("text", ""), message=copy.deepcopy(msg)
        )

    def _chat_delete(self, params: dict[str, Any]) -> Answer:
        channel = self._resolve_channel(str(params.get("channel", "")))
        msg = self._find_message(channel, str(params.get("ts", "")))
        if msg is None:
            return _error("message_not_found")
        self._timeline[channel].remove(msg)
        return _ok(channel=channel, ts=msg["ts"])

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> Answer:
        if not params.get("channel"):
            return _error("channel_not_found")
        if not params.get("user"):
            return _error("user_not_in_channel")
        return _ok(message_ts=self._next_ts())

    def _chat_get_permalink(self, params: dict[str, Any]) -> Answer:
        channel = self._resolve_channel(str(params.get("channel", "")))
        ts = str(params.get("message_ts", ""))
        if not channel or not ts:
            return _error("invalid_arguments")
        link = f"{TEAM_URL}archives/{channel}/p{ts.replace('.', '')}"
        return _ok(channel=channel, permalink=link)

    def _chat_schedule_message(self, params: dict[str, Any]) -> Answer:
        channel = self._resolve_channel(str(params.get("channel", "")))
        return _ok(
            channel=channel,
            scheduled_message_id=self._next_id("Q"),
            post_at=params.get("post_at"),
            message={"type": "message", "bot_id": BOT_ID, "text": params.get("text", "")},
        )

    def _conversations_open(self, params: dict[str, Any]) -> Answer:
        if params.get("channel"):
            return _ok(channel={"id": params["channel"]})
        users = [u for u in str(params.get("users", "")).split(",") if u]
        if not users:
            return _error("users_list_not_supplied")
        if len(users) == 1:
            channel_id = self.dm_channel(users[0])
            return _ok(channel={"id": channel_id, "is_im": True, "user": users[0]})
        return _ok(channel={"id": "G" + "".join(sorted(users)), "is_mpim": True})

    def _conversations_info(self, params: dict[str, Any]) -> Answer:
        """Every channel exists and has the bot as a member, except those in
        ``outside_channels`` (private channels the bot was not invited to)."""
        channel = str(params.get("channel", ""))
        if not channel:
            return _error("channel_not_found")
        outside = channel in self.outside_channels
        return _ok(
            channel={"id": channel, "name": channel.lower(), "is_channel": True,
                     "is_private": outside, "is_archived": False, "is_member": not outside}
        )  # fmt: skip

    def _conversations_history(self, params: dict[str, Any]) -> Answer:
        channel = self._resolve_channel(str(params.get("channel", "")))
        top = [
            m
            for m in self._timeline.get(channel, [])
            if "thread_ts" not in m or m.get("reply_broadcast") or m["thread_ts"] == m["ts"]
        ]
        return _ok(
            messages=copy.deepcopy(list(reversed(top))),
            has_more=False,
            response_metadata={"next_cursor": ""},
        )

    def _conversations_replies(self, params: dict[str, Any]) -> Answer:
        channel = self._resolve_channel(str(params.get("channel", "")))
        ts = str(params.get("ts", ""))
        found = [
            m for m in self._timeline.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts
        ]
        if not found:
            return _error("thread_not_found")
        return _ok(messages=copy.deepcopy(found), has_more=False)

    def _store_view(self, view_id: str, view: Any, **extra: Any) -> dict[str, Any]:
        stored: dict[str, Any] = dict(view) if isinstance(view, dict) else {}
        stored.setdefault("type", "modal")
        stored.setdefault("blocks", [])
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        stored.update(
            id=view_id,
            team_id=TEAM_ID,
            state={"values": {}},
            hash=f"{self._seq}.fakehash",
            app_id=APP_ID,
            bot_id=BOT_ID,
            root_view_id=view_id,
            previous_view_id=None,
            **extra,
        )
        self.views[view_id] = stored
        return copy.deepcopy(stored)

    def _views_open(self, params: dict[str, Any]) -> Answer:
        if not isinstance(params.get("view"), dict):
            return _error("invalid_arguments")
        return _ok(view=self._store_view(self._next_id("V"), params["view"]))

    def _views_update(self, params: dict[str, Any]) -> Answer:
        if not isinstance(params.get("view"), dict):
            return _error("invalid_arguments")
        view_id = params.get("view_id")
        if not view_id and params.get("external_id"):
            view_id = next(
                (i for i, v in self.views.items() if v.get("external_id") == params["external_id"]),
                None,
            )
        if not view_id or view_id not in self.views:
            return _error("not_found")
        return _ok(view=self._store_view(str(view_id), params["view"]))

    def _views_publish(self, params: dict[str, Any]) -> Answer:
        user_id = str(params.get("user_id", ""))
        if not user_id or not isinstance(params.get("view"), dict):
            return _error("invalid_arguments")
        view_id = self._home_views.setdefault(user_id, self._next_id("V"))
        return _ok(view=self._store_view(view_id, params["view"]))

    def _users_info(self, params: dict[str, Any]) -> Answer:
        user = self._users.get(str(params.get("user", "")))
        if user is None:
            return _error("user_not_found")
        return _ok(user=user.to_dict())

    def _users_list(self, params: dict[str, Any]) -> Answer:
        members = [u.to_dict() for u in self._users.values()]
        return _ok(members=members, response_metadata={"next_cursor": ""})

    def _users_lookup_by_email(self, params: dict[str, Any]) -> Answer:
        email = str(params.get("email", "")).lower()
        for user in self._users.values():
            if user.email is not None and user.email.lower() == email:
                return _ok(user=user.to_dict())
        return _error("users_not_found")

    def _usergroups_list(self, params: dict[str, Any]) -> Answer:
        include = str(params.get("include_users", "")).lower() in ("1", "true")
        return _ok(usergroups=[g.to_dict(include) for g in self._usergroups.values()])

    def _usergroups_users_list(self, params: dict[str, Any]) -> Answer:
        group = self._usergroups.get(str(params.get("usergroup", "")))
        if group is None:
            return _error("no_such_subteam")
        return _ok(users=list(group.members))

    def _files_get_upload_url(self, params: dict[str, Any]) -> Answer:
        file_id = self._next_id("F")
        return _ok(upload_url=f"{self.url}/upload/{file_id}", file_id=file_id)

    def _files_complete_upload(self, params: dict[str, Any]) -> Answer:
        files = params.get("files")
        if not isinstance(files, list):
            return _error("invalid_arguments")
        return _ok(files=[{"id": f.get("id"), "title": f.get("title")} for f in files])


__all__ = ["FakeSlack", "SlackCall"]
