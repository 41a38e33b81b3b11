"""Text for Slack: escaping user-supplied values, dates every reader sees in their own time
zone, and cutting text to Slack's limits (docs/domain.md, Slack)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.domain import format_duration

SECTION_LIMIT = 3000
HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
FALLBACK_LIMIT = 3000


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` (``&`` first), so ``<!channel>`` in a name pings nobody.

    https://api.slack.com/reference/surfaces/formatting#escaping
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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
