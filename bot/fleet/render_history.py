"""Pure renderer for ``/brincr history``: a :class:`~bot.fleet.timeline.HistoryPage` in, a
:class:`~bot.slack.blocks.Message` out. Times are shown in ``TIMEZONE`` (the team's clock, so a
copied timeline reads the same for everyone); one section per entry keeps each under
Slack's 3,000 characters, and a page of 20 stays far below 50 blocks."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.domain import format_duration
from bot.fleet.timeline import HistoryPage
from bot.slack.blocks import Message, button, context, fit, header, section, state_word
from bot.slack.ids import Action
from bot.slack.text import code, cut, date, escape
from storage.timeline import Entry

ENTRY_LIMIT = 900  # characters of reason or detail shown per entry
ACTIONS = {
    "invite": "sent the invitation",
    "invite-resend": "resent the onboarding instructions",
    "reconnect-instructions": "sent reconnect instructions",
    "link": "linked the tenant",
    "acknowledge": "acknowledged the incident",
    "snooze": "snoozed alerts",
    "unsnooze": "unsnoozed alerts",
    "resolve": "resolved the incident",
    "check": "checked by hand",
    "share": "shared the status in a channel",
    "forget": "removed the customer",
}
ROLLOUT_ACTIONS = {
    "rollout-on": "ON (scope rollout)",
    "rollout-off": "OFF again (scope rollout: not an incident)",
}


# Slack renders this in each reader's own time zone (the fallback: TIMEZONE, named).
HISTORY_DATE = "{date_short_pretty} {time}"


def when(at: datetime, tz: ZoneInfo) -> str:
    """``Sat 28 Nov 2026 14:05 CET``: the moment on the team's clock."""
    return at.astimezone(tz).strftime("%a %d %b %Y %H:%M %Z")


def describe(entry: Entry) -> str:
    detail = escape(cut(entry.detail or "", ENTRY_LIMIT))
    if entry.kind == "state":
        was = f" (was {entry.old})" if entry.old else ""
        return f"{state_word(entry.new or '')}{was}" + (f": {detail}" if detail else "")
    if entry.kind == "opened":
        return f":rotating_light: Incident opened: *{entry.new}*" + (
            f" — {detail}" if detail else ""
        )
    if entry.kind == "resolved":
        down = format_duration(entry.downtime) if entry.downtime is not None else "?"
        return f":white_check_mark: Incident resolved after {down} of downtime"
    action = entry.action or ""
    if action in ROLLOUT_ACTIONS:  # seen by a check, not done by a person (bot/onboarding/rollout)
        scopes = " ".join(f"{code(s)}" for s in (entry.detail or "").split())
        return f"The customer switched {scopes} {ROLLOUT_ACTIONS[action]}"
    verb = ACTIONS.get(action, f"did {code(action[:50])}")
    return f"<@{entry.who}> {verb}" + (f" ({detail})" if detail else "")


def _nav(page: HistoryPage) -> list[Block]:
    kvk = page.customer.kvk
    buttons = []
    if page.newer is not None:
        buttons.append(
            button("◀ Newer", Action.HISTORY_PAGE, json.dumps({"k": kvk, "o": page.newer}))
        )
    if page.older is not None:
        buttons.append(
            button("Older ▶", Action.HISTORY_PAGE, json.dumps({"k": kvk, "o": page.older}))
        )
    return [ActionsBlock(elements=buttons)] if buttons else []


def render_history(page: HistoryPage, tz: ZoneInfo) -> Message:
    c = page.customer
    blocks: list[Block] = [header(f"History · {c.name} · KvK {c.kvk}")]
    if not page.entries:
        blocks.append(section("Nothing on record yet."))
    for entry in page.entries:
        blocks.append(section(f"*{date(entry.at, HISTORY_DATE, tz)}* · {describe(entry)}"))
    shown = f"{page.offset + 1}–{page.offset + len(page.entries)} of {page.total}"
    blocks.append(context(f"Newest first · {shown} · times in your own time zone · state "
                          "changes are kept 35 days"))  # fmt: skip
    blocks += _nav(page)
    lines = [f"{when(e.at, tz)}: {describe(e)}" for e in page.entries[:5]]
    text = f"History of {escape(c.name)} (KvK {c.kvk})\n" + "\n".join(lines)
    return Message(text=text, blocks=fit(blocks))
