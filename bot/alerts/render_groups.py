"""Pure renderers for grouped incidents (``bot.alerts.grouping``): the message, updated in place as
customers join and recover, and the full customer list for its thread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.alerts.grouping import Member
from bot.alerts.render import incident_buttons, status_line
from bot.slack.blocks import Message, context, header, section, sections, state_word
from bot.slack.text import cut, date, escape
from storage.models import Incident


def member_line(member: Member) -> str:
    return f"• {escape(member.name)} (KvK {member.kvk})"


def render_group(
    incident: Incident, shown: Sequence[Member], now: datetime, *, mention: str = ""
) -> Message:
    """The grouped incident: cause, count, environment, and the first customers."""
    env = (incident.upstream_key or "").split(":")[1:2] or ["?"]
    cause = escape(cut(incident.reason or "same cause", 500))
    count = incident.affected_count
    facts = [
        f"*{count}* {env[0]} customers · {state_word(incident.state)}",
        f"Same cause: *{cause}*",
        f"Since {date(incident.opened_at)}",
    ]
    if mention:
        facts.append(f"On call: {mention}")
    listed = [member_line(m) for m in shown] or ["(none left)"]
    if count > len(shown):
        listed.append(f"… and {count - len(shown)} more: the full list is in the thread.")
    blocks: list[Block] = [
        header(cut(f"{count} {env[0]} customers {incident.state.replace('_', ' ')}", 150)),
        section("\n".join(facts)),
        *sections(listed),
        context(status_line(incident, now) + " · the buttons act for the whole group"),
        *incident_buttons(incident, None),
    ]
    verb = "recovered" if incident.resolved_at else f"{count} customers {incident.state}"
    return Message(text=f"{env[0]}: {cause}: {verb}", blocks=blocks)


def render_member_list(members: Sequence[Member], first: int, total: int) -> Message:
    """A thread reply listing ``members``: every one of them, in as many sections as the
    characters need (Slack cuts a section at 3,000)."""
    title = f"Customers {first}–{first + len(members) - 1} of {total}:"
    return _listing(title, [member_line(m) for m in members])


def render_joined(lines: Sequence[str]) -> Message:
    """Customers that joined the group after it opened (``lines`` from :func:`member_line`)."""
    return _listing("Also affected now:", lines)


def _listing(title: str, lines: Sequence[str]) -> Message:
    blocks: list[Block] = [*sections([title, *lines])]
    return Message(text=title + "\n" + "\n".join(lines), blocks=blocks)
