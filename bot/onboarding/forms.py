"""What people type to invite a customer: the modal's fields and the short form
``<kvk> <code>``, validated into an :class:`InviteForm`. Error text never repeats what was
typed (it may be an invitation code)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from bot.core.errors import UserError
from bot.domain import KVK_USAGE, Environment, normalize_kvk
from bot.onboarding.handoff import Language

MAX_NAME, MAX_CONTACT, MIN_CODE, MAX_CODE = 200, 200, 4, 100
LANGUAGES: tuple[Language, ...] = ("nl", "en")
SHORT_USAGE = (
    "`/brincr invite <kvk> <code>`, e.g. `/brincr invite 12345678 AB12-CD34`; "
    "or `/brincr invite` alone for the form"
)
CODE_RULE = f"An invitation code has {MIN_CODE} to {MAX_CODE} characters, without spaces."


@dataclass(frozen=True)
class InviteForm:
    """What to invite. None (the short form): keep the customer's name and environment, or
    "KvK <kvk>" in production for a new one; the language of its last invitation, or Dutch."""

    kvk: str
    code: str
    name: str | None = None
    environment: Environment | None = None
    language: Language | None = None
    contact: str | None = None


class InvalidInvite(UserError):
    """The form has errors: ``errors`` maps each bad field to a message (no values echoed)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("the invitation form has errors")
        self.errors = errors


def clean_code(text: str) -> str | None:
    """The invitation code: 4–100 printable characters without spaces; None if it is not."""
    code = text.strip()
    if not MIN_CODE <= len(code) <= MAX_CODE:
        return None
    return code if all(ch.isprintable() and not ch.isspace() for ch in code) else None


def parse_invite_form(raw: Mapping[str, str]) -> InviteForm:
    """Validate every field of the modal at once; InvalidInvite names each bad one."""
    errors: dict[str, str] = {}
    name = raw.get("name", "").strip()
    if not name or len(name) > MAX_NAME:
        errors["name"] = f"Enter the customer's name (at most {MAX_NAME} characters)."
    kvk = normalize_kvk(raw.get("kvk", ""))
    if kvk is None:
        errors["kvk"] = "A KvK number has 8 digits, e.g. 12345678."
    environment = raw.get("environment", "")
    if environment not in {e.value for e in Environment}:
        errors["environment"] = "Choose production or sandbox."
    code = clean_code(raw.get("code", ""))
    if code is None:
        errors["code"] = CODE_RULE
    language = raw.get("language", "")
    if language not in LANGUAGES:
        errors["language"] = "Choose Dutch or English."
    contact = raw.get("contact", "").strip() or None
    if contact is not None and len(contact) > MAX_CONTACT:
        errors["contact"] = f"At most {MAX_CONTACT} characters."
    if errors:
        raise InvalidInvite(errors)
    assert kvk is not None and code is not None
    language_ = cast(Language, language)
    return InviteForm(kvk, code, name, Environment(environment), language_, contact)


def parse_short_invite(rest: str) -> InviteForm:
    """``<kvk> <code>``. Errors never repeat what was typed: it may be a code."""
    if len(rest.split()) < 2:
        raise UserError("Which customer, and which invitation code?", usage=SHORT_USAGE)
    kvk_text, code_text = rest.rsplit(maxsplit=1)
    kvk = normalize_kvk(kvk_text)
    if kvk is None:
        raise UserError("that is not a KvK number followed by a code", usage=KVK_USAGE)
    code = clean_code(code_text)
    if code is None:
        raise UserError(CODE_RULE[:1].lower() + CODE_RULE[1:-1], usage=SHORT_USAGE)
    return InviteForm(kvk, code)
