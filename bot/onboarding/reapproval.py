"""Reconnect instructions for a customer with no invitation on record (imported by CSV, or invited
before the bot): re-approving scopes needs no invitation code. The customer opens the app under
Visma App Store → My apps and switches the named scopes ON again (docs/domain.md, Onboarding flow).

A customer's language is only known from an invitation, so without one the steps go out in
Dutch and in English, Dutch first (``languages``). The Visma portal is in English, so its UI
labels stay English in both languages.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, DividerBlock

from bot.onboarding.handoff import Language
from bot.slack.blocks import Message, context, header, section
from bot.slack.text import code, escape
from storage.models import Customer

_STEPS: dict[Language, tuple[str, ...]] = {
    "nl": (
        "Log in op de *Visma Developer Portal* met het account van de Brincr-gebruiker van "
        "{customer} (KvK `{kvk}`).",
        "Ga naar de *Visma App Store* en open *My apps*.",
        "Open onze koppeling en zet deze rechten (scopes) weer op *ON*:",
        "Sla de wijziging op. Zodra de rechten weer aan staan, werkt de koppeling vanzelf weer.",
    ),
    "en": (
        "Log in to the *Visma Developer Portal* with the account of {customer}'s Brincr user "
        "(KvK `{kvk}`).",
        "Go to the *Visma App Store* and open *My apps*.",
        "Open our integration and switch these scopes *ON* again:",
        "Save the change. As soon as the scopes are on again, the integration works again.",
    ),
}
_INTRO: dict[Language, str] = {
    "nl": "Goedendag,\n\nDe koppeling met Brincr heeft weer uw toestemming nodig:",
    "en": "Hello,\n\nThe Brincr integration needs your approval again:",
}


def reapproval_mrkdwn(customer: Customer, scopes: Sequence[str], language: Language) -> str:
    values = {"customer": escape(customer.name), "kvk": escape(customer.kvk)}
    lines = []
    for number, step in enumerate(_STEPS[language], start=1):
        line = f"{number}. {step.format(**values)}"
        if step.endswith(":"):
            line += "\n" + "\n".join(f"   • {code(s)}" for s in scopes)
        lines.append(line)
    return _INTRO[language] + "\n\n" + "\n".join(lines)


_FIRST_STEP_ANY: dict[Language, str] = {
    "nl": "Log in op de *Visma Developer Portal* met het account van de Brincr-gebruiker van "
    "uw organisatie.",
    "en": "Log in to the *Visma Developer Portal* with the account of your organisation's "
    "Brincr user.",
}
_NEW_SCOPES_INTRO: dict[Language, str] = {
    "nl": "Goedendag,\n\nOnze koppeling met Brincr vraagt sinds kort om extra rechten. Wilt u "
    "die aanzetten?",
    "en": "Hello,\n\nOur Brincr integration now asks for additional scopes. Would you switch "
    "them ON?",
}


def new_scopes_mrkdwn(scopes: Sequence[str], language: Language) -> str:
    """The re-approval steps for scopes the app newly requests (a scope rollout), for any
    customer: ready to forward, no customer named."""
    steps = (_FIRST_STEP_ANY[language], *_STEPS[language][1:])
    lines = []
    for number, step in enumerate(steps, start=1):
        line = f"{number}. {step}"
        if step.endswith(":"):
            line += "\n" + "\n".join(f"   • {code(s)}" for s in scopes)
        lines.append(line)
    return _NEW_SCOPES_INTRO[language] + "\n\n" + "\n".join(lines)


def render_reapproval(
    customer: Customer,
    scopes: Sequence[str],
    languages: Sequence[Language] = ("nl", "en"),
    *,
    sent_by: str,
) -> Message:
    """Steps to forward to the customer, with who asked for them."""
    blocks: list[Block] = [
        header(f"Reconnect instructions: {customer.name}"),
        context(
            f"No invitation on record: the re-approval steps, to forward to the customer. "
            f"Requested by <@{sent_by}>"
        ),
    ]
    for language in languages:
        blocks += [DividerBlock(), section(reapproval_mrkdwn(customer, scopes, language)[:3000])]
    text = f"Reconnect instructions for {escape(customer.name)} (KvK {customer.kvk})"
    return Message(text=text, blocks=blocks)
