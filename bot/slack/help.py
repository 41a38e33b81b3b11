"""The ``/brincr help`` text: every subcommand with its form, and examples."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.slack.blocks import Message, context, section
from bot.slack.text import code

HELP_LINES = (
    ("status <customer>", "connection state, scopes, last check and history"),
    (
        "list [problems|pending|revoked|rollout|all]",
        "the fleet, worst first (`problems`: not healthy)",
    ),
    ("check <customer>", "check now and show the result"),
    ("history <customer>", "state changes, incidents and who did what, newest first"),
    ("invite [<kvk> <code>]", "send onboarding instructions (admins)"),
    ("link <kvk> <tenant-id>", "tie a customer to its Visma tenant (admins)"),
    ("snooze <customer> <duration>", "mute alerts, e.g. `4h` or `1d` (admins)"),
    ("unsnooze <customer>", "alerts again (admins)"),
    ("forget <customer>", "remove a customer after confirmation (admins)"),
    ("resolve <customer>", "close the customer's open incident now (admins)"),
    (
        "maintenance <production|sandbox|all> <duration> [reason]",
        "planned downtime: no incidents or pages while it lasts (admins)",
    ),
    ("maintenance end <production|sandbox|all>", "end a maintenance window early (admins)"),
    ("maintenance", "list the maintenance windows"),
    ("digest", "post the weekly digest into the digest channel now (admins)"),
    ("rollout", "who has switched the new scopes (`BRINCR_ROLLOUT_SCOPES`) ON, per environment"),
    ("rollout remind", "DM each account manager their customers still to switch ON (admins)"),
)


def usage_lines(subcommand: str) -> list[str]:
    """The help lines of ``subcommand`` (``maintenance`` has three)."""
    return [
        f"`/brincr {usage}`: {what}"
        for usage, what in HELP_LINES
        if usage.split(" ", 1)[0] == subcommand
    ]


def render_suggestion(typed: str, suggestion: str) -> Message:
    """A near miss (``staus``): the one subcommand it most likely meant and its usage, not
    the whole help. ``typed`` is shown inert (:func:`~bot.slack.text.code`)."""
    lines = usage_lines(suggestion)
    text = f"I don't know {code(typed)}. Did you mean `{suggestion}`?"
    body = "\n".join([text, *lines])
    return Message(
        text=text,
        blocks=[section(body), context("Everything I do: `/brincr help`")],
    )


def render_help(note: str | None = None) -> Message:
    lines = "\n".join(f"`/brincr {usage}`: {what}" for usage, what in HELP_LINES)
    examples = (
        "Examples: `/brincr status 12345678` · `/brincr status Bouwbedrijf` · "
        "`/brincr list problems` · `/brincr snooze 12345678 4h`\n"
        "A customer is named by KvK number (spaces and dots ignored), tenant ID, "
        "or a unique part of its name."
    )
    blocks: list[Block] = []
    if note:
        blocks.append(section(note))
    blocks += [section(lines), context(examples)]
    return Message(text=note or "How to use /brincr", blocks=blocks)
