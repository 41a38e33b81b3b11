"""Pure renderers of the fleet feature: ``status``, ``list``, an ambiguous name's candidates,
and the ``forget`` confirmation. Domain objects in, a :class:`~bot.slack.blocks.Message` out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.domain import State
from bot.domain.scopes import ScopeTerms
from bot.slack.blocks import (
    STATE_EMOJI,
    Message,
    button,
    context,
    customer_label,
    fit,
    header,
    section,
    state_word,
)
from bot.slack.ids import Action
from bot.slack.text import ago, code, cut, date, escape, mention
from storage.customers import Candidate
from storage.models import CheckResult, Customer, Incident
from storage.reads import FleetPage, StatusData
from storage.slack_delivery import DeliveryProblem
from storage.statuses import IncidentKind

BROKEN_STATES = {State.SCOPES_MISSING, State.REVOKED, State.FAILING}

STRIP = {
    State.HEALTHY: "🟩",
    State.UNKNOWN: "⬜",
    State.FAILING: "🟧",
    State.SCOPES_MISSING: "🟥",
    State.REVOKED: "🟥",
}


def render_candidates(query: str, candidates: Sequence[Candidate]) -> Message:
    lines = "\n".join(
        f"• *{escape(c.name)}* (KvK {c.kvk}): {state_word(c.state)}" for c in candidates
    )
    text = f"More than one customer matches {code(cut(query, 40))}; name one by KvK:\n{lines}"
    return Message(
        text=f"More than one customer matches {escape(cut(query, 40))}", blocks=[section(text)]
    )


# --- status ----------------------------------------------------------------------------


def _scopes_line(customer: Customer, required: Sequence[str], terms: ScopeTerms) -> str:
    if not required:
        return "Scopes: none required (set `BRINCR_SCOPES`)"
    granted = set(customer.granted_scopes.split())
    missing = set(customer.missing_scopes.split())
    parts = []
    for scope in required:
        if scope in missing:
            parts.append(f":x: {code(scope)} missing")
        elif scope in granted:
            parts.append(f":white_check_mark: {code(scope)}")
        else:
            parts.append(f":grey_question: {code(scope)} not checked yet")
    return "Scopes:\n" + "\n".join(parts + _rollout_lines(customer, terms))


def _rollout_lines(customer: Customer, terms: ScopeTerms) -> list[str]:
    """Each rollout scope: switched ON, or not yet (tracked, not alerted: docs/interface.md)."""
    off = set((customer.rollout_missing_scopes or "").split())
    asked = customer.rollout_asked_at is not None
    deadline = f", deadline {terms.deadline.isoformat()}" if terms.deadline else ""
    lines = []
    for scope in terms.rollout:
        if scope in off:
            lines.append(f":hourglass: {code(scope)} not switched ON yet (rollout{deadline})")
        elif asked and customer.tenant_id:
            lines.append(f":white_check_mark: {code(scope)} switched ON (rollout)")
        else:
            lines.append(f":grey_question: {code(scope)} not asked yet (rollout{deadline})")
    return lines


# What the token request's outcome (bot.domain.outcomes.TokenOutcome) means, in the words a
# support person uses with a customer.
TOKEN_WORDS = {
    "ok": "Visma Connect let us in",
    "app_credentials": "Visma Connect refused our app's credentials (our side, not the customer's)",
    "tenant_access": "Visma Connect refused access to this customer (app removed or not approved)",
    "scopes": "Visma Connect refused or left out permissions we need",
    "transient": "Visma Connect did not answer properly (their side; we keep trying)",
    "rate_limited": "Visma Connect asked us to slow down (we keep trying)",
    "not_configured": "not checked: this environment's app credentials are not configured",
    "other": "Visma Connect refused us",
}


def _probe_words(status: int) -> str:
    if 200 <= status < 300:
        return f"the Brincr API answered normally (HTTP {status})"
    if status in (401, 403):
        return f"the Brincr API refused us (HTTP {status})"
    if status >= 500:
        return f"the Brincr API had an error on its side (HTTP {status})"
    return f"the Brincr API answered HTTP {status}"


def _last_check(last: CheckResult | None, now: datetime) -> str:
    if last is None:
        return "Last check: none yet"
    bits = [TOKEN_WORDS.get(last.token_outcome, f"token request: {last.token_outcome}")]
    if last.probe_status is not None:
        bits.append(_probe_words(last.probe_status))
    latency = (last.token_ms or 0) + (last.probe_ms or 0)
    line = f"Last check {ago(last.checked_at, now)}: {'; '.join(bits)}; took {latency} ms"
    if last.error_code or last.error_text:
        error = cut(f"{last.error_code or ''} {last.error_text or ''}".strip(), 500)
        line += f"\nUpstream said: {code(error)}"
    return line


def history_strip(recent: Sequence[CheckResult]) -> str:
    """Recent checks oldest → newest as coloured squares."""
    return "".join(STRIP.get(r.state, "⬛") for r in reversed(recent))  # type: ignore[call-overload]


def _held_line(data: StatusData) -> str | None:
    """A broken customer whose alert waits for peers (bot.alerts.holds)."""
    if data.held_until is None or data.customer.state not in BROKEN_STATES:
        return None
    return (
        f":hourglass_flowing_sand: Alert held until {date(data.held_until, '{time}')} "
        "while checking whether others are affected"
    )


def _incident_line(incident: Incident | None, now: datetime) -> str | None:
    if incident is None:
        return None
    line = f":rotating_light: Open incident since {ago(incident.opened_at, now)}"
    if incident.kind == IncidentKind.GROUP:
        line = (
            f":rotating_light: Part of a grouped incident since {ago(incident.opened_at, now)}: "
            f"{incident.affected_count} customers, {escape(cut(incident.reason or '', 200))}"
        )
    if incident.acknowledged_by:
        line += f", acknowledged by <@{incident.acknowledged_by}>"
    if incident.snoozed_until and incident.snoozed_until > now:
        line += f", snoozed until {date(incident.snoozed_until)}"
    return line


DELIVERY_SHOWN = 5  # problems listed; the rest are counted


def delivery_lines(problems: Sequence[DeliveryProblem]) -> list[str]:
    """One line per Slack delivery problem: "alerts to <#C…> are failing: not_in_channel
    since …" (a DM target is a person), newest trouble last."""
    lines = []
    for p in problems[:DELIVERY_SHOWN]:
        where = f"DMs to <@{p.channel_id}>" if p.channel_id[:1] in ("U", "W") else (
            f"alerts to <#{p.channel_id}>"
        )  # fmt: skip
        what = "failed for good" if p.given_up else "are failing"
        count = f"{p.undelivered} message{'s' * (p.undelivered != 1)}"
        lines.append(f":warning: {where} {what}: {code(p.error)} since {date(p.since)} ({count})")
    if len(problems) > DELIVERY_SHOWN:
        lines.append(f"… and {len(problems) - DELIVERY_SHOWN} more delivery problems")
    return lines


def render_status(data: StatusData, terms: ScopeTerms, now: datetime) -> Message:
    c = data.customer
    required = c.required_scopes.split() or list(terms.required)
    facts = [
        f"{state_word(c.state)} since {ago(c.state_since, now)}",
        f"Environment: {c.environment} · Tenant ID: {code(c.tenant_id or 'not linked')}",
    ]
    if c.snoozed_until and c.snoozed_until > now:
        facts.append(f":zzz: snoozed until {date(c.snoozed_until)}")
    if data.maintenance_until:
        facts.append(
            f":construction: {c.environment} is in maintenance until "
            f"{date(data.maintenance_until)}: checks are recorded, no alerts"
        )
    if c.account_manager:
        facts.append(f"Account manager: {mention(c.account_manager)}")
    blocks: list[Block] = [
        header(f"{c.name} · KvK {c.kvk}"),
        section("\n".join(facts)),
        section(_scopes_line(c, required, terms)),
        section(_last_check(data.last, now)),
    ]
    history = f"Recent checks: {history_strip(data.recent) or 'none'}"
    if data.week.checks:
        ok = 100 * (data.week.checks - data.week.failures) / data.week.checks
        history += f" · last 7 days: {ok:.1f}% healthy of {data.week.checks} checks"
    blocks.append(context(history))
    extra = [
        _incident_line(data.incident, now) or _held_line(data),
        _invitation_line(data, now),
    ]
    blocks += [section(line) for line in extra if line]
    if data.delivery:
        blocks.append(section("\n".join(delivery_lines(data.delivery))))
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


# --- list ------------------------------------------------------------------------------

LIST_PAGE_SIZE = 20


def _counts_line(counts: dict[str, int]) -> str:
    order = sorted(State, key=lambda s: list(STATE_EMOJI).index(s))
    parts = [f"{STATE_EMOJI[s]} {s.value} {counts.get(s.value, 0)}" for s in order]
    return " · ".join(parts)


def _rollout_note(customer: Customer) -> str:
    off = (customer.rollout_missing_scopes or "").split()
    if not off:
        return ""
    return " · :hourglass: " + " ".join(f"{code(s)}" for s in off) + " not switched ON yet"


# What each list shows, in words: a filter's name is not a state word's meaning (`failing`,
# the older name of `problems`, lists scopes_missing and revoked customers too).
LIST_TITLES = {
    "all": "All customers",
    "problems": "Customers with a problem",
    "failing": "Customers with a problem",
    "pending": "Customers not connected yet",
    "revoked": "Customers who removed the app",
}
LIST_STATES = {
    "problems": "revoked, scopes_missing, failing or unknown",
    "failing": "revoked, scopes_missing, failing or unknown",
    "pending": "invited or pending",
}


def render_list(page: FleetPage, which: str, now: datetime) -> Message:
    total_all = sum(page.counts.values())
    title = LIST_TITLES.get(which, f"Customers: {which}")
    counts = _counts_line(page.counts) + f" · :zzz: snoozed {page.snoozed}"
    if which in LIST_STATES:
        counts = f"Showing {LIST_STATES[which]}. All: {counts}"
    blocks: list[Block] = [
        header(f"{title} ({page.total} of {total_all})"),
        context(counts),
    ]
    if not page.customers:
        blocks.append(section("No customers in this list."))
    lines = [
        f"{state_word(c.state)} {customer_label(c)} · {c.environment} · since "
        f"{ago(c.state_since, now)}" + _rollout_note(c)
        for c in page.customers
    ]
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start : start + 10])))
    nav = _page_buttons(page, which)
    if nav:
        blocks.append(ActionsBlock(elements=nav))
    text = f"{title}: {page.total} of {total_all}"
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


def render_shared(data: StatusData, terms: ScopeTerms, now: datetime, user_id: str) -> Message:
    """A status shared in the channel: without the buttons, saying who shared it."""
    message = render_status(data, terms, now)
    return Message(
        text=f"{message.text} (shared by <@{user_id}>)",
        blocks=[*message.blocks[:-1], context(f"Shared by <@{user_id}>")],
    )
