"""The Slack app manifest for brincr-bot, built in Python so it cannot drift from the code.

``manifest.yml`` at the repository root is exactly ``render_manifest(None)`` (the Socket Mode
variant); ``brincr-bot manifest --url https://bot.example.com`` prints the HTTP variant whose
request URLs all point at ``{url}/slack/events``. tests/test_manifest.py checks both against
Slack's published JSON Schema and checks that manifest.yml is up to date.

The constants below are what the rest of the code (and the tests) compare against: the slash
command, the bot events and the bot scopes. ``manifest_listeners`` reduces a manifest to what
the app must listen for, for comparison with the listeners the Bolt app registers.
"""

from __future__ import annotations

from typing import Any, TypedDict
from urllib.parse import urlsplit

import yaml

from bot.core.errors import UserError

APP_NAME = "Brincr bot"
APP_DESCRIPTION = (
    "Watches the Visma Connect connection of every Brincr customer and alerts "
    "in Slack when one breaks."
)
APP_LONG_DESCRIPTION = (
    "Brincr bot watches the Brincr API connections that customers grant through Visma Connect. "
    "It checks every customer on a schedule (token, granted scopes and an API probe), posts an "
    "alert in the alert channel when a connection fails, loses scopes or is revoked, and helps "
    "onboard new customers with invitations and handoff messages. Use /brincr help to start."
)
BACKGROUND_COLOR = "#1d4e89"

SLASH_COMMAND = "/brincr"
SLASH_COMMAND_DESCRIPTION = "Check and manage customers' Brincr / Visma Connect connections"
SLASH_COMMAND_USAGE = (
    "status <customer> · list · check <customer> · invite · link <kvk> <tenant-id> · help"
)

#: Events the bot subscribes to (App Home tab).
BOT_EVENTS: tuple[str, ...] = ("app_home_opened",)
#: Bot token scopes, and no more: the slash command, posting (also in channels the bot was not
#: invited to, for alerts), opening DMs, reading user groups for BOT_ADMINS, and seeing
#: whether the bot is in the alert channels (``serve`` checks at start).
BOT_SCOPES: tuple[str, ...] = (
    "commands",
    "chat:write",
    "chat:write.public",
    "im:write",
    "usergroups:read",
    "channels:read",
    "groups:read",
)
#: Scopes of the app-level token (``xapp-…``, SLACK_APP_TOKEN) that Socket Mode needs. Not part
#: of the manifest: app-level tokens are created by hand under Basic Information.
APP_TOKEN_SCOPES: tuple[str, ...] = ("connections:write",)
#: Where ``brincr-bot serve`` receives slash commands, interactivity and events in HTTP mode.
EVENTS_PATH = "/slack/events"


def normalize_url(url: str) -> str:
    """The deployment's base URL without a trailing slash; UserError when it is not usable.

    It must be http(s) with a host and without query, fragment or credentials.
    """
    shown = url if len(url) <= 200 else url[:200] + "…"
    usage = "--url https://bot.example.com"
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise UserError(f"`{shown}` is not a valid URL", usage=usage) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"`{shown}` is not an http(s) URL with a host, e.g. https://bot.example.com",
            usage=usage,
        )
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise UserError(
            f"`{shown}` must not have a query or fragment: give the base URL only; "
            f"Slack's requests go to <url>{EVENTS_PATH}",
            usage=usage,
        )
    if parts.username is not None or parts.password is not None:
        raise UserError("the URL must not contain a user name or password", usage=usage)
    if any(c.isspace() for c in text):
        raise UserError(f"`{shown}` contains whitespace", usage=usage)
    return text.rstrip("/")


def build_manifest(url: str | None = None) -> dict[str, Any]:
    """The manifest as a dict: Socket Mode without ``url``, HTTP mode with it."""
    base = normalize_url(url) if url is not None else None
    request_url = f"{base}{EVENTS_PATH}" if base is not None else None

    slash_command: dict[str, Any] = {"command": SLASH_COMMAND}
    if request_url:
        slash_command["url"] = request_url
    slash_command.update(
        description=SLASH_COMMAND_DESCRIPTION, usage_hint=SLASH_COMMAND_USAGE, should_escape=False
    )

    event_subscriptions: dict[str, Any] = {}
    interactivity: dict[str, Any] = {"is_enabled": True}
    if request_url:
        event_subscriptions["request_url"] = request_url
        interactivity["request_url"] = request_url
    event_subscriptions["bot_events"] = list(BOT_EVENTS)

    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": APP_NAME,
            "description": APP_DESCRIPTION,
            "background_color": BACKGROUND_COLOR,
            "long_description": APP_LONG_DESCRIPTION,
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                # The bot DMs people; they cannot write back (nothing listens for DMs).
                "messages_tab_enabled": True,
                "messages_tab_read_only_enabled": True,
            },
            "bot_user": {"display_name": APP_NAME, "always_online": True},
            "slash_commands": [slash_command],
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": event_subscriptions,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": base is None,
            "token_rotation_enabled": False,
        },
    }


def _header(base: str | None) -> str:
    lines = [
        "Slack app manifest for brincr-bot, generated by `brincr-bot manifest`: regenerate it",
        "rather than editing (tests/test_manifest.py checks that manifest.yml is up to date).",
        "Create the app at https://api.slack.com/apps → Create New App → From a manifest, then",
        "install it and set SLACK_BOT_TOKEN (xoxb-…).",
    ]
    if base is None:
        lines += [
            "",
            "Socket Mode, no request URLs. Also create an app-level token (xapp-…) with the",
            f"{' '.join(APP_TOKEN_SCOPES)} scope (Basic Information → App-Level Tokens) and",
            "set SLACK_APP_TOKEN; that token and its scope are not part of the manifest.",
            "For HTTP mode instead: brincr-bot manifest --url https://bot.example.com",
        ]
    else:
        lines += [
            "",
            "HTTP mode: Slack sends slash commands, interactivity and events to",
            f"{base}{EVENTS_PATH}.",
            "Set SLACK_SIGNING_SECRET (Basic Information → App Credentials) and leave",
            "SLACK_APP_TOKEN unset.",
        ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render_manifest(url: str | None = None) -> str:
    """The manifest as YAML with an explanatory comment header (UserError on a bad url)."""
    manifest = build_manifest(url)
    base = normalize_url(url) if url is not None else None
    body = yaml.safe_dump(
        manifest, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
    )
    return _header(base) + body


class ManifestListeners(TypedDict):
    """What a manifest makes Slack send: compare with the listeners the Bolt app registers."""

    commands: frozenset[str]
    events: frozenset[str]
    interactivity: bool


def manifest_listeners(manifest: dict[str, Any]) -> ManifestListeners:
    """The slash commands, bot events and interactivity flag declared by ``manifest``."""
    features = manifest.get("features") or {}
    settings = manifest.get("settings") or {}
    commands = frozenset(c["command"] for c in features.get("slash_commands") or [])
    events = frozenset((settings.get("event_subscriptions") or {}).get("bot_events") or [])
    interactivity = bool((settings.get("interactivity") or {}).get("is_enabled", False))
    return {"commands": commands, "events": events, "interactivity": interactivity}
