"""Block Kit as plain terminal text, for ``brincr-bot demo`` (the terminal stands in for Slack).

Takes the same payload the bot sends to Slack (``text`` + ``blocks`` dicts) and returns what a
person would read: headers underlined, sections and fields as lines, buttons in brackets,
mrkdwn links reduced to their labels, and Slack date tokens shown as Slack shows them: in the
reader's (the terminal's) own time zone.
"""

from __future__ import annotations

import html
import re
import textwrap
from datetime import UTC, datetime
from typing import Any

_DATE = re.compile(r"<!date\^(\d+)\^[^|>]*\|[^>]*>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_MENTION = re.compile(r"<[@#!]([^|>]+)(?:\|([^>]+))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_([^_\n]+)_(?![\w_])")
WIDTH = 96


def _local_date(match: re.Match[str]) -> str:
    """A Slack date token as Slack shows it to the reader: in their own time zone, here the
    terminal's, with the zone's name."""
    moment = datetime.fromtimestamp(int(match.group(1)), UTC).astimezone()
    return moment.strftime("%d %b %Y %H:%M %Z")


def mrkdwn_to_text(text: str) -> str:
    """Slack mrkdwn → readable text: dates and links to their labels, *bold* and _italic_
    markers dropped, entities unescaped."""
    text = _DATE.sub(_local_date, text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _MENTION.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    return html.unescape(text)


def _text_of(obj: dict[str, Any] | None) -> str:
    return mrkdwn_to_text(obj.get("text", "")) if obj else ""


def _wrap(text: str, indent: str = "  ", then: str | None = None) -> list[str]:
    """Wrapped lines; the first line of each paragraph starts with ``indent``, the rest with
    ``then`` (default: the same)."""
    rest = indent if then is None else then
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(
            textwrap.wrap(paragraph, WIDTH, initial_indent=indent, subsequent_indent=rest)
            or [indent.rstrip()]
        )
    return lines


def _elements(elements: list[dict[str, Any]]) -> str:
    parts = []
    for element in elements:
        if element.get("type") == "button":
            parts.append(f"[ {_text_of(element.get('text'))} ]")
        elif element.get("type") in ("static_select", "external_select", "users_select"):
            choices = " | ".join(_text_of(o.get("text")) for o in element.get("options", []))
            menu = _text_of(element.get("placeholder")) or "choose"
            parts.append(f"[ {menu} ▾ {choices} ]" if choices else f"[ {menu} ▾ ]")
        elif "text" in element:
            parts.append(_text_of(element) if isinstance(element["text"], str) else "")
        else:
            parts.append(_text_of(element.get("text")))
    return "  ".join(p for p in parts if p)


def _block_lines(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        title = _text_of(block.get("text"))
        return [f"  {title}", "  " + "═" * min(len(title), WIDTH)]
    if kind == "divider":
        return ["  " + "─" * 40]
    if kind == "section":
        lines = _wrap(_text_of(block.get("text"))) if block.get("text") else []
        for field in block.get("fields", []):
            lines.extend(_wrap(_text_of(field), "    "))
        if block.get("accessory"):
            lines.append("    " + _elements([block["accessory"]]))
        return lines
    if kind == "context":
        return _wrap(_elements(block.get("elements", [])), "  · ", "    ")
    if kind == "actions":
        return ["  " + _elements(block.get("elements", []))]
    if kind == "rich_text":
        return _wrap(str(block.get("text", "")))
    return []


def render_payload(payload: dict[str, Any]) -> str:
    """The readable form of a message payload (``text`` and optional ``blocks``)."""
    blocks = payload.get("blocks") or []
    if not blocks:
        return "\n".join(_wrap(mrkdwn_to_text(payload.get("text", ""))))
    lines: list[str] = []
    for block in blocks:
        lines.extend(_block_lines(block))
    return "\n".join(lines)
