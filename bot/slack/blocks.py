"""Block Kit building blocks shared by every feature's renderers: :class:`Message`, the
section/header/context/button helpers, state words, notices and user errors.

Built with ``slack_sdk.models.blocks`` and kept inside Slack's limits (docs/domain.md, Slack):
at most 50 blocks, 3,000-character sections, 150-character headers, 75-character button
labels. Every user-supplied value (customer names, upstream error text) goes through
:func:`~bot.slack.text.escape`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.errors import UserError
from bot.domain import State
from bot.slack.ids import Action
from bot.slack.text import FALLBACK_LIMIT, HEADER_LIMIT, SECTION_LIMIT, code, cut, escape
from storage.models import Customer

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


def sections(lines: Sequence[str], limit: int = SECTION_LIMIT) -> list[SectionBlock]:
    """``lines`` in as many sections as their characters need: each section within
    ``limit``, no line dropped or split between two (a single longer line is cut)."""
    packed: list[list[str]] = []
    size = limit + 1
    for line in (cut(line, limit) for line in lines):
        if size + 1 + len(line) > limit:
            packed.append([])
            size = -1
        packed[-1].append(line)
        size += 1 + len(line)
    return [section("\n".join(group)) for group in packed]


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


def render_error(error: UserError) -> Message:
    """The refusal, with the bad value the person typed shown inert (``error.echo``)."""
    said = str(error) if error.echo is None else error.template.replace("{echo}", code(error.echo))
    text = f":warning: {said[:1].upper()}{said[1:]}"
    blocks: list[Block] = [section(text)]
    if error.usage:
        blocks.append(context(error.usage))
    return Message(text=said, blocks=blocks)


def render_notice(text: str) -> Message:
    """A one-line reply (``text`` is mrkdwn the caller already escaped)."""
    return Message(text=text, blocks=[section(text)])
