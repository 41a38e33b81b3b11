"""Pure renderer for the weekly digest (bot/fleet/digest.py): counts per state with their change
since last week, the customers needing action grouped by what to do, the week's incidents.

Long lists are cut to fit Slack's limits (3,000 characters a section, 50 blocks) and say
how many were left out; `/brincr list` has the rest."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, DividerBlock, SectionBlock

from bot.domain import STATE_SEVERITY, State, format_duration
from bot.fleet.digest_data import DigestData, WeekIncident
from bot.fleet.render_history import when
from bot.slack.blocks import Message, context, fit, header, section, state_word
from bot.slack.text import SECTION_LIMIT, code, escape, mention
from storage.models import Customer

BUDGET = SECTION_LIMIT - 200  # room for a section's title and the "… more" line
_STATES = {s.value for s in State}


def _change(now: int, before: int) -> str:
    delta = now - before
    return "±0" if delta == 0 else f"{delta:+d}"


def _severity(state: str) -> int:
    return STATE_SEVERITY.get(State(state), 9) if state in _STATES else 9


def _counts(data: DigestData) -> str:
    lines = []
    for state in sorted(set(data.counts) | set(data.counts_before), key=_severity):
        now, before = data.counts.get(state, 0), data.counts_before.get(state, 0)
        lines.append(f"{state_word(state)}: {now} ({_change(now, before)} since last week)")
    total, before = sum(data.counts.values()), sum(data.counts_before.values())
    lines.append(f"Total: {total} ({_change(total, before)})")
    return "\n".join(lines)


def _group(title: str, lines: Sequence[str]) -> SectionBlock:
    """A section with ``title`` and as many ``lines`` as fit, then how many did not."""
    kept: list[str] = []
    size = len(title)
    for line in lines:
        if size + len(line) + 1 > BUDGET:
            break
        kept.append(line)
        size += len(line) + 1
    rest = len(lines) - len(kept)
    more = [f"… and {rest} more (`/brincr list all`)"] if rest else []
    return section("\n".join([f"{title} ({len(lines)})", *kept, *more]))


def _customer(c: Customer) -> str:
    return f"*{escape(c.name)}* (KvK {c.kvk})"


def _action_sections(data: DigestData, tz: ZoneInfo) -> list[Block]:
    blocks: list[Block] = []
    if data.scopes_missing:
        title = "*Scopes missing: ask the customer to switch these on*"
        lines = [f"• {_customer(c)}: {', '.join(map(code, c.missing_scopes.split())) or '?'}"
                 for c in data.scopes_missing]  # fmt: skip
        blocks.append(_group(title, lines))
    if data.revoked:
        title = "*Revoked: send a new invitation* (`/brincr invite`)"
        lines = [
            f"• {_customer(c)} since {c.state_since.astimezone(tz):%d %b}" for c in data.revoked
        ]
        blocks.append(_group(title, lines))
    for manager, waiting in sorted(data.waiting.items()):
        title = f"*Invitations not approved yet, for {mention(manager)}*"
        lines = [f"• {_customer(c)}: waiting {format_duration(data.now - i.created_at)}"
                 for i, c in waiting]  # fmt: skip
        blocks.append(_group(title, lines))
    if data.rollout_pending:
        title = "*Scope rollout: not switched ON yet* (`/brincr rollout remind`)"
        lines = [f"• {_customer(c)}: {', '.join(map(code, c.rollout_missing_scopes.split()))}"
                 for c in data.rollout_pending]  # fmt: skip
        blocks.append(_group(title, lines))
    if not blocks:
        blocks.append(section(":tada: No customer needs action."))
    return blocks


def _incident_line(item: WeekIncident, tz: ZoneInfo) -> str:
    who = _customer(item.customer) if item.customer else escape(item.incident.upstream_key or "")
    status = "still open" if item.open else "resolved"
    return (f"• {who}: *{item.incident.state}* from {when(item.incident.opened_at, tz)}, "
            f"{format_duration(item.downtime)} this week ({status})")  # fmt: skip


def render_digest(data: DigestData, tz: ZoneInfo) -> Message:
    period = f"{data.since.astimezone(tz):%d %b} – {data.now.astimezone(tz):%d %b %Y}"
    blocks: list[Block] = [
        header(f"Weekly digest · {period}"),
        section("*Connections per state*\n" + _counts(data)),
        DividerBlock(),
        *_action_sections(data, tz),
        DividerBlock(),
    ]
    lines = [_incident_line(item, tz) for item in data.incidents]
    title = f"*Incidents this week, total downtime {format_duration(data.downtime)}*"
    blocks.append(_group(title, lines) if lines else section(title))
    blocks.append(context(f"From stored state, no checks run · times in {tz.key}"))
    needing = len(data.scopes_missing) + len(data.revoked) + sum(map(len, data.waiting.values()))
    text = (f"Weekly digest: {needing} customer(s) need action, {len(lines)} incident(s), "
            f"{format_duration(data.downtime)} downtime")  # fmt: skip
    return Message(text=text, blocks=fit(blocks))
