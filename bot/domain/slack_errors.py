"""What Slack's Web API error codes mean for a message the bot sends: retry, give up, or tell
an operator what to fix. Pure data; the outbox sender (``bot.outbox``) acts on it."""

from __future__ import annotations

TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# The message itself is wrong: sending it again can never work. Everything else Slack
# answers (a channel, token or scope problem, an outage, a code we do not know) is retried.
# https://api.slack.com/methods/chat.postMessage#errors, .../chat.update#errors
BUG_ERRORS = frozenset(
    {
        "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text",
        "too_many_attachments", "invalid_arguments", "invalid_arg_name", "invalid_array_arg",
        "invalid_charset", "invalid_form_data", "invalid_post_type", "missing_post_type",
        "invalid_json", "json_not_object", "invalid_metadata_format", "invalid_metadata_schema",
        "metadata_too_large", "markdown_text_conflict", "cant_update_message",
        "message_not_found", "edit_window_closed", "cant_broadcast_message",
    }
)  # fmt: skip
# What an operator does about a configuration problem, for the one ERROR line it gets.
FIXES: dict[str, str] = {
    "not_in_channel": "invite the bot to the channel (/invite @Brincr bot)",
    "channel_not_found": "check the channel ID; a private channel needs the bot invited",
    "is_archived": "unarchive the channel or configure another one",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid: set the bot token of the installed app",
    "not_authed": "SLACK_BOT_TOKEN is not set",
    "account_inactive": "the app was uninstalled or its token revoked: reinstall, set the token",
    "token_revoked": "the app was uninstalled or its token revoked: reinstall, set the token",
    "token_expired": "the bot token expired: reinstall the app or rotate the token",
    "missing_scope": "reinstall the app with the scopes of `brincr-bot manifest`",
    "restricted_action": "a workspace admin restricts posting in this channel",
    "ekm_access_denied": "the workspace's Enterprise Key Management denies access",
    "user_disabled": "the person was deactivated: give their customers another account manager",
    "user_not_found": "no such person: give their customers another account manager",
}


def fix_for(error: str) -> str:
    """What to do about ``error`` (a code, or "HTTP 403 code")."""
    words = error.split()
    return FIXES.get(words[-1] if words else "", "see the error at api.slack.com")
