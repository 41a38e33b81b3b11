"""The App Home tab: a fleet dashboard (counts per state, broken customers, open incidents,
invitations waiting longest). At most 100 blocks (Slack's limit for a Home tab)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.fleet.render import delivery_lines
from bot.slack.blocks import STATE_EMOJI, context, customer_label, fit, header, section, state_word
from bot.slack.text import ago, escape
from storage.reads import HomeData

HOME_BLOCKS = 100


def _counts(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = [f"{STATE_EMOJI[s]} *{counts.get(s.value, 0)}* {s.value}" for s in STATE_EMOJI]
    return f"*{total}* customers\n" + "   ".join(parts)


def _incidents(home: HomeData, now: datetime) -> list[str]:
    lines = []
    for incident, customer in home.incidents:
        what = customer_label(customer) if customer else f"*{escape(incident.upstream_key or '')}*"
        if incident.kind == "group":  # bot.alerts.grouping
            what = f"*{incident.affected_count} customers*, {escape(incident.reason or '')}"
        ack = f", acknowledged by <@{incident.acknowledged_by}>" if incident.acknowledged_by else ""
        lines.append(
            f"• {what}: {escape(incident.state)} since {ago(incident.opened_at, now)}{ack}"
        )
    return lines


def render_home(home: HomeData, now: datetime) -> View:
    blocks: list[Block] = [
        header("Brincr connections"),
        section(_counts(home.counts)),
        DividerBlock(),
    ]
    if home.delivery:  # the bot cannot tell on-call: the first thing to see
        blocks.append(section("*Slack delivery*\n" + "\n".join(delivery_lines(home.delivery))))
    blocks.append(section("*Needs attention*"))
    broken = [
        f"{state_word(c.state)} {customer_label(c)} since {ago(c.state_since, now)}"
        for c in home.broken
    ]
    blocks.append(section("\n".join(broken) or "Nothing: every linked customer is fine. :tada:"))
    blocks.append(section("*Open incidents*"))
    blocks.append(section("\n".join(_incidents(home, now)) or "None."))
    if home.rollout_pending:
        names = ", ".join(customer_label(c) for c in home.rollout_pending[:10])
        more = len(home.rollout_pending) - 10
        blocks.append(
            section(
                f"*Scope rollout*: {len(home.rollout_pending)} customers have not switched the "
                f"new scopes ON yet: {names}" + (f" and {more} more" if more > 0 else "")
                + " · `/brincr rollout`"
            )
        )  # fmt: skip
    blocks.append(section("*Invitations waiting longest*"))
    waiting = [
        f"• {customer_label(c)}: sent by <@{i.invited_by}> {ago(i.created_at, now)}"
        for i, c in home.invitations
    ]
    blocks.append(section("\n".join(waiting) or "None waiting."))
    blocks.append(context(f"Updated {ago(now, now)} · `/brincr help` for commands"))
    return View(type="home", blocks=fit(blocks, HOME_BLOCKS))


def home_view_dict(home: HomeData, now: datetime) -> dict[str, Any]:
    return render_home(home, now).to_dict()


__all__ = ["home_view_dict", "render_home"]
