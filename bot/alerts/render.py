"""Pure renderers for on-call alerts: the incident message (updated in place) and its thread
follow-ups. Customer names and upstream error text are escaped."""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    Option,
    StaticSelectElement,
)

from bot.domain import format_duration
from bot.slack.blocks import Message, button, context, customer_label, header, section, state_word
from bot.slack.ids import Action
from bot.slack.text import code, cut, date, escape
from bot.slack.text import mention as user_mention
from storage.models import Customer, Incident

SNOOZE_CHOICES = (("1 hour", "1h"), ("4 hours", "4h"), ("1 day", "1d"), ("1 week", "1w"))
UPSTREAM_NAMES = {"visma": "Visma Connect", "brincr": "the Brincr API", "app": "our Visma app"}


def upstream_title(key: str) -> str:
    service, _, environment = key.partition(":")
    if service == "group":  # bot.alerts.grouping: group:<env>:<state>:<digest>
        return f"The {environment.split(':')[0]} customers with one cause"
    if service == "app":
        return f"Visma Connect refuses our {environment} app credentials"
    return f"{UPSTREAM_NAMES.get(service, service)} ({environment}) is failing"


def _what_broke(incident: Incident, customer: Customer | None) -> str:
    if customer is not None and customer.missing_scopes and incident.state == "scopes_missing":
        scopes = ", ".join(code(s) for s in customer.missing_scopes.split())
        return f"Missing scopes: {scopes}"
    reason = incident.reason or "no details"
    return f"Upstream said: {code(cut(reason, 800))}"


def _status_line(incident: Incident, now: datetime) -> str:
    if incident.resolved_at is not None:
        down = format_duration(incident.resolved_at - incident.opened_at)
        return f":white_check_mark: Resolved {date(incident.resolved_at)} after {down}"
    parts = [":rotating_light: Open"]
    if incident.acknowledged_by:
        parts.append(f"acknowledged by <@{incident.acknowledged_by}>")
    if incident.snoozed_until and incident.snoozed_until > now:
        parts.append(f":zzz: snoozed until {date(incident.snoozed_until)}")
    return ", ".join(parts)


def _buttons(incident: Incident, customer: Customer | None) -> list[Block]:
    if incident.resolved_at is not None:
        return []
    ref = str(incident.id)
    elements: list[ButtonElement | StaticSelectElement] = []
    if not incident.acknowledged_by:
        elements.append(button("Acknowledge", Action.ACKNOWLEDGE, ref, style="primary"))
    elements.append(
        StaticSelectElement(
            action_id=Action.SNOOZE.value,
            placeholder="Snooze…",
            options=[Option(text=label, value=f"{ref}:{value}") for label, value in SNOOZE_CHOICES],
        )
    )
    if customer is not None:
        elements.append(button("Check now", Action.CHECK_NOW, customer.kvk))
        elements.append(button("Send reconnect instructions", Action.RECONNECT, customer.kvk))
    elements.append(button("Resolve", Action.RESOLVE, ref))
    if customer is not None:
        elements.append(button("History", Action.HISTORY, customer.kvk))
    return [ActionsBlock(elements=elements)]


def render_incident(
    incident: Incident, customer: Customer | None, now: datetime, *, mention: str = ""
) -> Message:
    """The alert message: what broke, since when, who to talk to, and what to do.
    ``mention`` (mrkdwn, e.g. ``<!subteam^S…>``) names who is on call."""
    if customer is None:
        return _render_upstream(incident, now, mention)
    facts = [
        f"{customer_label(customer)} · {customer.environment} · {state_word(incident.state)}",
        _what_broke(incident, customer),
        f"Since {date(incident.opened_at)}",
    ]
    if customer.account_manager:
        facts.append(f"Account manager: {user_mention(customer.account_manager)}")
    if mention:
        facts.append(f"On call: {mention}")
    blocks: list[Block] = [
        header(f"Brincr connection {incident.state.replace('_', ' ')}: {customer.name}"),
        section("\n".join(facts)),
        context(_status_line(incident, now)),
        *_buttons(incident, customer),
    ]
    verb = "recovered" if incident.resolved_at else incident.state
    text = f"{escape(customer.name)} (KvK {customer.kvk}): {verb}"
    return Message(text=text, blocks=blocks)


def _render_upstream(incident: Incident, now: datetime, mention: str = "") -> Message:
    title = upstream_title(incident.upstream_key or "upstream:unknown")
    facts = [
        f"*{incident.affected_count}* customers affected; their own alerts are held back "
        "while this lasts (it is not their fault).",
        _what_broke(incident, None),
        f"Since {date(incident.opened_at)}",
    ]
    if mention:
        facts.append(f"On call: {mention}")
    blocks: list[Block] = [
        header(title),
        section("\n".join(facts)),
        context(_status_line(incident, now)),
        *_buttons(incident, None),
    ]
    verb = "recovered" if incident.resolved_at else f"{incident.affected_count} customers affected"
    return Message(text=f"{title}: {verb}", blocks=blocks)


def render_followup(text: str) -> Message:
    """A thread reply (``text`` is mrkdwn the caller built from escaped values)."""
    return Message(text=text, blocks=[section(text)])


def downtime(incident: Incident, now: datetime) -> str:
    return format_duration(max(now - incident.opened_at, timedelta(0)))


def render_snooze_note(user_id: str, until: datetime | None) -> str:
    """The thread note when an incident's snooze is set or lifted."""
    if until is None:
        return f":bell: Unsnoozed by <@{user_id}>."
    return f":zzz: Snoozed by <@{user_id}> until {date(until)}."


status_line = _status_line  # for bot.alerts.render_groups
incident_buttons = _buttons


# --- thread notes (mrkdwn, for render_followup) -----------------------------------------


def _who(incident: Incident, customer: Customer | None) -> str:
    return f"*{escape(customer.name)}*" if customer else upstream_title(incident.upstream_key or "")


def change_note(incident_was: str, customer: Customer) -> str:
    detail = escape((customer.state_reason or "")[:500])
    return f"Now *{customer.state}* (was {incident_was}): {detail}"


def recovery_note(incident: Incident, customer: Customer | None, now: datetime) -> str:
    return (
        f":white_check_mark: {_who(incident, customer)} recovered after {downtime(incident, now)}."
    )


def acknowledged_note(user_id: str) -> str:
    return f"Acknowledged by <@{user_id}>; reminders stop."


def resolved_note(user_id: str) -> str:
    return f":white_check_mark: Resolved by <@{user_id}>."


def reminder_note(
    incident: Incident, customer: Customer | None, now: datetime, *, last: int
) -> str:
    """The ``n``-th reminder of ``last``; it mentions the account manager when it is a user."""
    text = (
        f":bell: Reminder {incident.reminders_sent}/{last}: {_who(incident, customer)} is still "
        f"{incident.state} after {downtime(incident, now)}, and nobody has acknowledged it."
    )
    manager = customer.account_manager if customer else None
    if manager and user_mention(manager).startswith("<@"):
        text += f" {user_mention(manager)}"
    if incident.reminders_sent >= last:
        text += " This is the last reminder."
    return text


def snooze_ended_note(state: str) -> str:
    return f":bell: Snooze ended: still *{state}*."


def render_customer_snooze_ended(customer: Customer) -> Message:
    """Posted in the alert channel when a customer without an open incident wakes up."""
    return render_followup(
        f":bell: Snooze for *{escape(customer.name)}* (KvK {customer.kvk}) ended: "
        f"it is *{customer.state}*."
    )


# --- fold-in (#23): a single incident that joined the group with its cause --------------


def _group_words(group: Incident) -> str:
    return f"*{group.affected_count}* customers, {escape(cut(group.reason or 'no details', 300))}"


def render_folded(incident: Incident, customer: Customer, group: Incident) -> Message:
    """A single alert's message once it joined a group: it points there, without buttons
    (the group's message takes Acknowledge, Snooze and Resolve)."""
    facts = [
        f"{customer_label(customer)} · {customer.environment} · {state_word(incident.state)}",
        f"Since {date(incident.opened_at)}",
    ]
    blocks: list[Block] = [
        header(f"Brincr connection {incident.state.replace('_', ' ')}: {customer.name}"),
        section("\n".join(facts)),
        context(
            f":link: Now part of the grouped incident ({_group_words(group)}): "
            "updates and paging continue there."
        ),
    ]
    text = f"{escape(customer.name)} (KvK {customer.kvk}): part of a grouped incident"
    return Message(text=text, blocks=blocks)


def folded_note(group: Incident) -> str:
    return (
        f":link: Others broke the same way: this alert joined the grouped incident "
        f"({_group_words(group)}); its page is resolved and the group pages instead."
    )
