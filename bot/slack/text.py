"""Text for Slack: escaping user-supplied values, dates every reader sees in their own time
zone, and cutting text to Slack's limits (docs/domain.md, Slack)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.domain import format_duration

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
FALLBACK_LIMIT = 3000
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


#: What stands in for a backtick in text from outside: MODIFIER LETTER GRAVE ACCENT looks the
#: same and opens or closes no code span.
BACKTICK_LOOKALIKE = "\u02cb"


def escape(text: str) -> str:
    """``text`` from outside (names, scopes, upstream answers) made inert in mrkdwn.

    ``&``, ``<`` and ``>`` are escaped (``&`` first), so ``<!channel>`` or
    ``<https://evil|Re-approve>`` in a name pings and links nobody
    (https://api.slack.com/reference/surfaces/formatting#escaping); a backtick becomes a
    look-alike, so no value can open or close a code span around the text beside it.
    Every renderer goes through this (or :func:`code`); docs/security.md, hostile text.
    """
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("`", BACKTICK_LOOKALIKE)


def code(text: str) -> str:
    """``text`` from outside shown verbatim in an inline code span, whatever it holds.

    Inside the span nothing renders (no bold, no link, no bare URL); :func:`escape` keeps a
    backtick from closing it, and line breaks (which end an inline span in Slack) become
    spaces.
    """
    inert = " ".join(escape(text).splitlines())
    return f"`{inert or ' '}`"


def mention(user_id: str) -> str:
    """A user mention for a stored Slack user ID (``U…``/``W…``); anything else shown inert."""
    if _USER_ID.fullmatch(user_id):
        return f"<@{user_id}>"
    return escape(user_id)


def cut(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def date(
    when: datetime, token: str = "{date_short_pretty} {time}", tz: ZoneInfo | None = None
) -> str:
    """Slack date formatting: each reader sees ``when`` in their own time zone. Where Slack
    cannot render it (notifications, old clients) the fallback shows ``tz`` (the team's
    ``TIMEZONE`` where the caller has it, else UTC), with the zone's name."""
    fallback = when.astimezone(tz or UTC).strftime("%Y-%m-%d %H:%M %Z")
    return f"<!date^{int(when.timestamp())}^{token}|{fallback}>"


def ago(when: datetime, now: datetime) -> str:
    """``when`` as a Slack date plus how long ago, e.g. ``<!date…> (2h 5m ago)``."""
    return f"{date(when)} ({format_duration(now - when)} ago)"
