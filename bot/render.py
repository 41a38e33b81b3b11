"""Pure Block Kit renderers for replies: domain objects in, a :class:`Message` out.

Built with ``slack_sdk.models.blocks`` and kept inside Slack's limits (DOMAIN.md §6): at most
50 blocks, 3,000-character sections, 150-character headers, 75-character button labels. Every
user-supplied value (customer names, upstream error text) goes through :func:`escape`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.actions import Action
from bot.domain import State
from bot.errors import UserError
from bot.slack_text import FALLBACK_LIMIT, HEADER_LIMIT, SECTION_LIMIT, ago, cut, date, escape
from storage.customers import Candidate
from storage.models import CheckResult, Customer, Incident
from storage.reads import FleetPage, StatusData

MAX_BLOCKS = 50
STATE_EMOJI = {
    State.HEALTHY: ":large_green_circle:",
    State.SCOPES_MISSING: ":large_orange_circle:",
    State.REVOKED: ":red_circle:",
    State.FAILING: ":red_circle:",
    State.UNKNOWN: ":white_circle:",
    State.PENDING: ":hourglass_flowing_sand:",
    State.INVITED: ":envelope:",
}
STRIP = {
    State.HEALTHY: "🟩",
    State.UNKNOWN: "⬜",
    State.FAILING: "🟧",
    State.SCOPES_MISSING: "🟥",
    State.REVOKED: "🟥",
}
STATE_MEANING = {
    State.INVITED: "hand-off sent, no tenant linked yet",
    State.PENDING: "tenant linked, not checked yet",
    State.HEALTHY: "token and API probe work",
    State.SCOPES_MISSING: "the customer has not granted every required scope",
    State.REVOKED: "the customer removed the app, or the tenant refuses us",
    State.FAILING: "token or API probe failing",
    State.UNKNOWN: "Visma Connect or Brincr unreachable: not the customer's fault",
}


@dataclass(frozen=True)
class Message:
    """A Slack message: the notification ``text`` fallback and its blocks."""

    text: str
    blocks: list[Block] = field(default_factory=list)

    def block_dicts(self) -> list[dict[str, Any]]:
        return [block.to_dict() for block in self.blocks]

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``respond``/``chat_postMessage``/``chat_update``."""
        return {"text": cut(self.text, FALLBACK_LIMIT), "blocks": self.block_dicts()}


def section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=cut(text, SECTION_LIMIT)))


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=cut(text, HEADER_LIMIT))


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=cut(text, SECTION_LIMIT))])


def button(label: str, action: Action, value: str = "", style: str | None = None) -> ButtonElement:
    return ButtonElement(text=cut(label, 75), action_id=action.value, value=value, style=style)


def state_word(state: str) -> str:
    emoji = STATE_EMOJI.get(state, "")  # type: ignore[call-overload]  # StrEnum == str
    return f"{emoji} *{state}*".strip()


def customer_label(customer: Customer) -> str:
    return f"*{escape(customer.name)}* (KvK {customer.kvk})"


def fit(blocks: Sequence[Block], limit: int = MAX_BLOCKS) -> list[Block]:
    """At most ``limit`` blocks: the last kept block says how many were left out."""
    if len(blocks) <= limit:
        return list(blocks)
    return [*blocks[: limit - 1], context(f"… {len(blocks) - limit + 1} more not shown")]


# --- help and errors -------------------------------------------------------------------

HELP_LINES = (
    ("status <customer>", "connection state, scopes, last check and history"),
    ("list [failing|pending|revoked|all]", "the fleet, worst first"),
    ("check <customer>", "check now and show the result"),
    ("history <customer>", "state changes, incidents and who did what, newest first"),
    ("invite [<kvk> <code>]", "send onboarding instructions (admins)"),
    ("link <kvk> <tenant-id>", "tie a customer to its Visma tenant (admins)"),
    ("snooze <customer> <duration>", "mute alerts, e.g. `4h` or `1d` (admins)"),
    ("unsnooze <customer>", "alerts again (admins)"),
    ("forget <customer>", "remove a customer after confirmation (admins)"),
    ("digest", "post the weekly digest into the digest channel now (admins)"),
)


def render_help(note: str | None = None) -> Message:
    lines = "\n".join(f"`/brincr {usage}`: {what}" for usage, what in HELP_LINES)
    examples = (
        "Examples: `/brincr status 12345678` · `/brincr status Bouwbedrijf` · "
        "`/brincr list failing` · `/brincr snooze 12345678 4h`\n"
        "A customer is named by KvK number (spaces and dots ignored), tenant ID, "
        "or a unique part of its name."
    )
    blocks: list[Block] = []
    if note:
        blocks.append(section(note))
    blocks += [section(lines), context(examples)]
    return Message(text=note or "How to use /brincr", blocks=blocks)


def render_error(error: UserError) -> Message:
    said = str(error)
    text = f":warning: {said[:1].upper()}{said[1:]}"
    blocks: list[Block] = [section(text)]
    if error.usage:
        blocks.append(context(error.usage))
    return Message(text=str(error), blocks=blocks)


def render_candidates(query: str, candidates: Sequence[Candidate]) -> Message:
    lines = "\n".join(
        f"• *{escape(c.name)}* (KvK {c.kvk}): {state_word(c.state)}" for c in candidates
    )
    text = f"More than one customer matches `{escape(cut(query, 40))}`; name one by KvK:\n{lines}"
    return Message(
        text=f"More than one customer matches {escape(cut(query, 40))}", blocks=[section(text)]
    )


def render_notice(text: str) -> Message:
    """A one-line reply (``text`` is mrkdwn the caller already escaped)."""
    return Message(text=text, blocks=[section(text)])


# --- status ----------------------------------------------------------------------------


def _scopes_line(customer: Customer, required: Sequence[str]) -> str:
    if not required:
        return "Scopes: none required (set `BRINCR_SCOPES`)"
    granted = set(customer.granted_scopes.split())
    missing = set(customer.missing_scopes.split())
    parts = []
    for scope in required:
        if scope in missing:
            parts.append(f":x: `{escape(scope)}` missing")
        elif scope in granted:
            parts.append(f":white_check_mark: `{escape(scope)}`")
        else:
            parts.append(f":grey_question: `{escape(scope)}` not checked yet")
    return "Scopes:\n" + "\n".join(parts)


def _last_check(last: CheckResult | None, now: datetime) -> str:
    if last is None:
        return "Last check: none yet"
    bits = [f"token {last.token_outcome}"]
    if last.probe_status is not None:
        bits.append(f"probe HTTP {last.probe_status}")
    latency = (last.token_ms or 0) + (last.probe_ms or 0)
    bits.append(f"{latency} ms")
    line = f"Last check: {ago(last.checked_at, now)}: {', '.join(bits)}"
    if last.error_code or last.error_text:
        error = escape(cut(f"{last.error_code or ''} {last.error_text or ''}".strip(), 500))
        line += f"\nUpstream said: `{error}`"
    return line


def history_strip(recent: Sequence[CheckResult]) -> str:
    """Recent checks oldest → newest as coloured squares."""
    return "".join(STRIP.get(r.state, "⬛") for r in reversed(recent))  # type: ignore[call-overload]


def _incident_line(incident: Incident | None, now: datetime) -> str | None:
    if incident is None:
        return None
    line = f":rotating_light: Open incident since {ago(incident.opened_at, now)}"
    if incident.acknowledged_by:
        line += f", acknowledged by <@{incident.acknowledged_by}>"
    if incident.snoozed_until and incident.snoozed_until > now:
        line += f", snoozed until {date(incident.snoozed_until)}"
    return line


def render_status(data: StatusData, required: Sequence[str], now: datetime) -> Message:
    c = data.customer
    required = c.required_scopes.split() or list(required)
    facts = [
        f"{state_word(c.state)} since {ago(c.state_since, now)}",
        f"Environment: {c.environment} · Tenant ID: `{c.tenant_id or 'not linked'}`",
    ]
    if c.snoozed_until and c.snoozed_until > now:
        facts.append(f":zzz: snoozed until {date(c.snoozed_until)}")
    if c.account_manager:
        facts.append(f"Account manager: {_person(c.account_manager)}")
    blocks: list[Block] = [
        header(f"{c.name} · KvK {c.kvk}"),
        section("\n".join(facts)),
        section(_scopes_line(c, required)),
        section(_last_check(data.last, now)),
    ]
    history = f"Recent checks: {history_strip(data.recent) or 'none'}"
    if data.week.checks:
        ok = 100 * (data.week.checks - data.week.failures) / data.week.checks
        history += f" · last 7 days: {ok:.1f}% healthy of {data.week.checks} checks"
    blocks.append(context(history))
    extra = [_incident_line(data.incident, now), _invitation_line(data, now)]
    blocks += [section(line) for line in extra if line]
    blocks.append(
        ActionsBlock(
            elements=[
                button("Check now", Action.CHECK_NOW, c.kvk, style="primary"),
                button("Share in channel", Action.SHARE, c.kvk),
                button("History", Action.HISTORY, c.kvk),
            ]
        )
    )
    return Message(text=f"{escape(c.name)} (KvK {c.kvk}): {c.state}", blocks=fit(blocks))


def _invitation_line(data: StatusData, now: datetime) -> str | None:
    invitation = data.invitation
    if invitation is None:
        return None
    sent = ago(invitation.created_at, now)
    return f":envelope: Invitation sent by <@{invitation.invited_by}> {sent}, not approved yet"


def _person(who: str) -> str:
    """An account manager: a Slack user ID becomes a mention, anything else is escaped text."""
    if who[:1] in ("U", "W") and who.isalnum() and who.upper() == who:
        return f"<@{who}>"
    return escape(who)


# --- list ------------------------------------------------------------------------------

LIST_PAGE_SIZE = 20


def _counts_line(counts: dict[str, int]) -> str:
    order = sorted(State, key=lambda s: list(STATE_EMOJI).index(s))
    parts = [f"{STATE_EMOJI[s]} {s.value} {counts.get(s.value, 0)}" for s in order]
    return " · ".join(parts)


def render_list(page: FleetPage, which: str, now: datetime) -> Message:
    total_all = sum(page.counts.values())
    blocks: list[Block] = [
        header(f"Customers: {which} ({page.total} of {total_all})"),
        context(_counts_line(page.counts) + (f" · :zzz: snoozed {page.snoozed}")),
    ]
    if not page.customers:
        blocks.append(section("No customers in this list."))
    lines = [
        f"{state_word(c.state)} {customer_label(c)} · {c.environment} · since "
        f"{ago(c.state_since, now)}"
        for c in page.customers
    ]
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start : start + 10])))
    nav = _page_buttons(page, which)
    if nav:
        blocks.append(ActionsBlock(elements=nav))
    text = f"{page.total} customers ({which})"
    return Message(text=text, blocks=fit(blocks))


def _page_buttons(page: FleetPage, which: str) -> list[ButtonElement]:
    shown_to = page.offset + len(page.customers)
    buttons = []
    if page.offset > 0:
        previous = json.dumps({"f": which, "o": max(0, page.offset - LIST_PAGE_SIZE)})
        buttons.append(button("◀ Previous", Action.LIST_PAGE, previous))
    if shown_to < page.total:
        label = f"Next ({shown_to + 1}–{min(shown_to + LIST_PAGE_SIZE, page.total)}) ▶"
        buttons.append(button(label, Action.LIST_PAGE, json.dumps({"f": which, "o": shown_to})))
    return buttons


# --- forget ----------------------------------------------------------------------------


def render_forget_confirm(customer: Customer) -> Message:
    text = (
        f"Remove {customer_label(customer)} and all its history? Its invitations and "
        "incidents go too. This cannot be undone."
    )
    return Message(
        text=f"Remove {escape(customer.name)}?",
        blocks=[
            section(text),
            ActionsBlock(
                elements=[
                    button("Remove", Action.FORGET_CONFIRM, customer.kvk, style="danger"),
                    button("Cancel", Action.FORGET_CANCEL, customer.kvk),
                ]
            ),
        ],
    )
