"""Pure renderers for maintenance windows: the announcements and the list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.domain import format_duration
from bot.slack.blocks import Message, section
from bot.slack.text import cut, date, escape


@dataclass(frozen=True)
class WindowView:
    """A window as the list shows it."""

    environment: str
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    created_by: str


def render_maintenance_start(
    environments: Sequence[str], until: datetime, reason: str | None, user_id: str
) -> Message:
    envs = " and ".join(f"*{e}*" for e in environments)
    why = f": {escape(cut(reason, 300))}" if reason else ""
    text = (
        f":construction: Maintenance for {envs} until {date(until)}, started by <@{user_id}>"
        f"{why}. Checks still run, but no incidents open and nobody is paged for "
        f"{' and '.join(environments)} while it lasts."
    )
    return Message(text=text, blocks=[section(text)])


def render_maintenance_end(environment: str, ended_by: str | None) -> Message:
    how = f"ended early by <@{ended_by}>" if ended_by else "ended as planned"
    text = (
        f":white_check_mark: Maintenance for *{environment}* {how}. Customers that are still "
        "broken alert as usual at their next check."
    )
    return Message(text=text, blocks=[section(text)])


def render_maintenance_list(windows: Sequence[WindowView], now: datetime) -> Message:
    if not windows:
        text = "No maintenance window: incidents open and page as usual."
        return Message(text=text, blocks=[section(text)])
    lines = [":construction: Maintenance now:"]
    for w in windows:
        why = f": {escape(cut(w.reason, 200))}" if w.reason else ""
        lines.append(
            f"• *{w.environment}* until {date(w.ends_at)} ({format_duration(w.ends_at - now)} "
            f"left), by <@{w.created_by}>{why}"
        )
    text = "\n".join(lines)
    return Message(text=text, blocks=[section(text)])
