"""The terminal as Slack: each message the bot sends is printed under a line saying where it
went (``#alerts``, ``#alerts › thread``, ``only visible to you``, ``updated``), its Block Kit
rendered by :func:`bot.demo.terminal.render_payload`. Buttons get numbers (unique for the whole
session) so ``click <n>`` can press them.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from bot.demo.slack import Delivery
from bot.demo.terminal import render_payload

RULE_WIDTH = 72
EMOJI = {
    "white_check_mark": "✅", "x": "❌", "rotating_light": "🚨", "warning": "⚠️",
    "hourglass_flowing_sand": "⏳", "hourglass": "⌛", "zzz": "💤", "envelope": "✉️",
    "tada": "🎉", "red_circle": "🔴", "large_orange_circle": "🟠", "large_green_circle": "🟢",
    "white_circle": "⚪", "grey_question": "❔", "bell": "🔔", "link": "🔗",
    "wastebasket": "🗑️", "inbox_tray": "📥", "outbox_tray": "📤",
}  # fmt: skip
_EMOJI = re.compile(r":([a-z0-9_+-]+):")


@dataclass(frozen=True)
class Clickable:
    """A numbered button of a printed message."""

    number: int
    label: str
    action_id: str
    value: str
    delivery: Delivery
    menu: bool = False  # an option of a menu (static_select): choosing it, not a press


def with_emoji(text: str) -> str:
    """Slack's ``:shortcodes:`` for the emoji the bot uses; others stay as typed."""
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


class Printer:
    """Prints deliveries and plain lines to ``out`` (stdout by default), flushing each."""

    def __init__(self, channels: Mapping[str, str], out: TextIO | None = None) -> None:
        self.channels = dict(channels)
        self.out = out
        self.buttons: dict[int, Clickable] = {}

    def line(self, text: str = "") -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def show(self, delivery: Delivery, *, note: str = "") -> None:
        """Print a message under its heading (plus ``note``); its buttons get new numbers."""
        payload = self._numbered(delivery)
        if delivery.where == "modal":
            payload = _modal_as_message(payload)
        self.line()
        self.line(self._rule(self.heading(delivery) + note))
        self.line(with_emoji(render_payload(payload)))

    def heading(self, delivery: Delivery) -> str:
        """Where the message went, as a person in Slack would see it."""
        channel = self.channel_name(delivery.channel)
        if delivery.where == "post":
            return channel
        if delivery.where == "reply":
            return f"{channel} › thread"
        if delivery.where == "update":
            return f"{channel} · updated"
        if delivery.where == "modal":
            return "a form opens (fill it in Slack; here use the short form)"
        if delivery.where == "ephemeral" or delivery.ephemeral:
            replaces = delivery.payload.get("replace_original") in (True, "true")
            return "only visible to you" + (" · replaces the message above" if replaces else "")
        return "shared in the channel"

    def channel_name(self, channel: str) -> str:
        if channel in self.channels:
            return self.channels[channel]
        if channel.startswith("D"):
            return "direct message"
        return f"#{channel}"

    def _rule(self, title: str) -> str:
        head = f"── {title} "
        return head + "─" * max(3, RULE_WIDTH - len(head))

    def _numbered(self, delivery: Delivery) -> dict[str, Any]:
        """A copy of the payload whose buttons read ``1: Label``; remembers each button."""
        payload = copy.deepcopy(delivery.payload)
        for element in _buttons(payload.get("blocks") or []):
            number = len(self.buttons) + 1
            label = str(element.get("text", {}).get("text", ""))
            self.buttons[number] = Clickable(
                number, label, str(element["action_id"]), str(element.get("value", "")), delivery
            )
            element["text"] = {**element.get("text", {}), "text": f"{number}: {label}"}
        for menu in _menus(payload.get("blocks") or []):  # each option gets its own number
            for option in menu.get("options", []):
                number = len(self.buttons) + 1
                label = str(option.get("text", {}).get("text", ""))
                self.buttons[number] = Clickable(
                    number, label, str(menu["action_id"]), str(option.get("value", "")),
                    delivery, menu=True,
                )  # fmt: skip
                option["text"] = {**option.get("text", {}), "text": f"{number}: {label}"}
        return payload


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The clickable buttons of ``blocks`` (link buttons open a page: not clickable here)."""
    found = []
    for block in blocks:
        elements = list(block.get("elements", [])) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        found += [
            e for e in elements if e.get("type") == "button" and "action_id" in e and "url" not in e
        ]
    return found


def _menus(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The option menus (static_select) of ``blocks``."""
    found = []
    for block in blocks:
        elements = list(block.get("elements", [])) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        found += [e for e in elements if e.get("type") == "static_select" and "action_id" in e]
    return found


def _modal_as_message(view: dict[str, Any]) -> dict[str, Any]:
    """A modal's title and fields as message blocks (input blocks become their labels)."""
    title = str(view.get("title", {}).get("text", "form"))
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text",
                                                                 "text": title}}]  # fmt: skip
    for block in view.get("blocks", []):
        if block.get("type") == "input":
            label = str(block.get("label", {}).get("text", ""))
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{label}: ____"}})
        else:
            blocks.append(block)
    return {"text": title, "blocks": blocks}
