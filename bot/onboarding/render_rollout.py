"""Pure renderers of a scope rollout (bot/onboarding/rollout.py): the tracker message and its
thread notes, ``/brincr rollout``, the account managers' reminder DM and the admin's reply.
Every name a customer or an account manager typed goes through ``escape``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, DividerBlock

from bot.onboarding.reapproval import new_scopes_mrkdwn
from bot.onboarding.rollout_data import Progress, RemindReport, RolloutView
from bot.slack.blocks import Message, context, fit, header, section
from bot.slack.text import code, escape
from storage.models import Customer
from storage.rollouts import Standing

SHOWN_MISSING = 25  # customers still missing the scopes listed in `/brincr rollout`
DM_CUSTOMERS = 40  # customers listed in one reminder DM (blocks and characters stay small)
ENDINGS = {
    "everyone": ":tada: Every customer switched it ON: the rollout is done. Move the scopes "
    "into `BRINCR_SCOPES` and empty `BRINCR_ROLLOUT_SCOPES` when convenient.",
    "deadline": ":alarm_clock: The deadline has come: the rollout scopes now count as required. "
    "Customers still missing them are `scopes_missing` and alert like any missing scope.",
    "required": ":white_check_mark: The scopes are now in `BRINCR_SCOPES`: the rollout is over. "
    "Customers still missing them are `scopes_missing`.",
    "stopped": ":octagonal_sign: The scopes left `BRINCR_ROLLOUT_SCOPES`: this rollout is no "
    "longer tracked.",
}


def scopes_text(scopes: Sequence[str]) -> str:
    return " ".join(code(s) for s in scopes)


def manager_text(manager: str | None) -> str:
    if not manager:
        return "no account manager"
    if manager[:1] in ("U", "W") and manager.isalnum():
        return f"<@{manager}>"
    return escape(manager)


def day(value: date) -> str:
    return f"{value.day} {value.strftime('%b %Y')}"


def progress_line(progress: Progress, deadline: date | None) -> str:
    them = "it" if len(progress.scopes) == 1 else "them"
    percent = round(100 * progress.switched / progress.total) if progress.total else 0
    line = (
        f"{scopes_text(progress.scopes)}: *{progress.switched} of {progress.total}* "
        f"{progress.environment} customers switched {them} ON ({percent} %)"
    )
    unknown = sum(1 for c in progress.customers if not c.asked)
    if unknown:
        line += f" · {unknown} not asked yet"
    if deadline is not None:
        line += f" · deadline {day(deadline)}"
    return line


def render_tracker(
    progress: Progress, deadline: date | None, tz: ZoneInfo, *, ending: str | None = None
) -> Message:
    """The tracker message in ``ONBOARDING_CHANNEL`` (one per environment and rollout)."""
    line = progress_line(progress, deadline)
    blocks: list[Block] = [header(f"Scope rollout: {progress.environment}"), section(line)]
    if ending is not None:
        blocks.append(context(ENDINGS[ending]))
    else:
        blocks.append(
            context("Customers switch the scopes ON in the Visma App Store (My apps). "
                    "`/brincr rollout` lists who has not yet; `/brincr rollout remind` asks "
                    "their account managers.")
        )  # fmt: skip
    return Message(text=line.replace("*", ""), blocks=blocks)


def render_tracker_note(
    progress: Progress,
    *,
    ending: str | None,
    days_left: int | None,
    deadline: date | None,
    tz: ZoneInfo,
) -> Message:
    """A reminder before the deadline, or the final note, in the tracker's thread."""
    if ending is not None:
        text = f"{ENDINGS[ending]}\nFinal count: {progress_line(progress, None)}."
    else:
        when = "tomorrow" if days_left == 1 else f"in {days_left} days"
        when = "today" if days_left is not None and days_left <= 0 else when
        text = (
            f":bell: The rollout deadline ({day(deadline) if deadline else '?'}) is {when}: "
            f"{len(progress.missing)} {progress.environment} customers have not switched "
            f"{scopes_text(progress.scopes)} ON yet. `/brincr rollout remind` asks their "
            "account managers."
        )
    return Message(text=text, blocks=[section(text)])


def render_switch_note(customer: Customer, scopes: Sequence[str], *, switched_on: bool) -> Message:
    """A customer switched rollout scopes ON (or OFF again), for the tracker's thread."""
    who = f"*{escape(customer.name)}* (KvK {customer.kvk})"
    manager = manager_text(customer.account_manager)
    if switched_on:
        text = f":white_check_mark: {who} switched {scopes_text(scopes)} ON · {manager}"
    else:
        text = (
            f":arrow_down: {who} switched {scopes_text(scopes)} OFF again · {manager}. "
            "No incident: the scopes are being rolled out."
        )
    return Message(text=text, blocks=[section(text)])


def _customer_line(customer: Standing) -> str:
    state = "not switched ON yet" if customer.asked else "not asked yet"
    return (
        f"• *{escape(customer.name)}* (KvK {customer.kvk}, {customer.environment}) · "
        f"{manager_text(customer.account_manager)} · {state}"
    )


def render_rollout(view: RolloutView) -> Message:
    """``/brincr rollout``: progress per environment, the deadline, who has not yet."""
    blocks: list[Block] = [header("Scope rollout")]
    if view.enforced:
        blocks.append(context(ENDINGS["deadline"]))
    if not view.environments:
        blocks.append(section("No customer with a tenant yet: nothing to roll out to."))
    for progress in view.environments:
        blocks.append(section(progress_line(progress, view.deadline)))
        missing = progress.missing
        if missing:
            lines = [_customer_line(c) for c in missing[:SHOWN_MISSING]]
            if len(missing) > SHOWN_MISSING:
                lines.append(
                    f"… and {len(missing) - SHOWN_MISSING} more: `/brincr list rollout` "
                    "pages through all"
                )
            blocks.append(section("\n".join(lines)))
    text = "; ".join(progress_line(p, view.deadline) for p in view.environments) or "Rollout"
    return Message(text=text.replace("*", ""), blocks=fit(blocks))


def render_remind_dm(
    customers: Sequence[Standing], scopes: Sequence[str], deadline: date | None
) -> Message:
    """The reminder DM to one account manager: their customers and the steps to forward."""
    by = f" before {day(deadline)}" if deadline else ""
    intro = (
        f":wave: The app now asks for {scopes_text(scopes)}. These customers of yours have not "
        f"switched {'it' if len(scopes) == 1 else 'them'} ON yet; please ask them to{by}:"
    )
    lines = [_customer_line(c) for c in customers[:DM_CUSTOMERS]]
    if len(customers) > DM_CUSTOMERS:
        lines.append(f"… and {len(customers) - DM_CUSTOMERS} more (`/brincr list rollout`)")
    blocks: list[Block] = [section(intro), section("\n".join(lines))]
    blocks.append(context("The steps below are ready to forward, in Dutch and in English."))
    for language in ("nl", "en"):
        blocks += [DividerBlock(), section(new_scopes_mrkdwn(scopes, language))]
    text = f"{len(customers)} of your customers have not switched {' '.join(scopes)} ON yet"
    return Message(text=text, blocks=blocks)


def render_remind_report(report: RemindReport, tz: ZoneInfo) -> Message:
    """The admin's reply to ``/brincr rollout remind``."""
    lines = []
    if report.sent:
        who = ", ".join(f"<@{m}> ({len(c)})" for m, c in report.sent.items())
        lines.append(f":envelope: Reminded {len(report.sent)} account managers: {who}.")
    for manager, when in report.earlier.items():
        at = _local_time(when, tz)
        lines.append(f":zzz: <@{manager}> was already reminded today{at}: one reminder a day.")
    if report.unassigned:
        names = "\n".join(_customer_line(c) for c in report.unassigned[:SHOWN_MISSING])
        more = len(report.unassigned) - SHOWN_MISSING
        lines.append(
            "Without an account manager in Slack (remind these yourself):\n" + names
            + (f"\n… and {more} more" if more > 0 else "")
        )  # fmt: skip
    if not lines:
        lines.append(":white_check_mark: Every customer has switched the rollout scopes ON.")
    text = "\n\n".join(lines)
    return Message(text=text, blocks=[section(t) for t in lines])


def _local_time(when: str, tz: ZoneInfo) -> str:
    try:
        return " at " + datetime.fromisoformat(when).astimezone(tz).strftime("%H:%M %Z")
    except ValueError:
        return ""
