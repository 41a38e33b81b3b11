"""Typed readers of the Slack payloads the listeners get: one place that knows where Slack
puts the user, the pressed button's value, the channel and the trigger.

A listener reads its payload once, ``press = Press.of(body)``, and never indexes ``body``
itself. Missing pieces become empty strings or None, never a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Press:
    """A block action: a button pressed or a menu option chosen."""

    user_id: str
    value: str  # the button's value, or the chosen option's value
    channel_id: str | None
    message_ts: str | None
    trigger_id: str | None
    in_ephemeral: bool  # pressed inside an ephemeral message (a reply only its reader sees)

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Press:
        actions = body.get("actions")
        action = _dict(actions[0]) if isinstance(actions, list) and actions else {}
        value = _text(action.get("value")) or _text(
            _dict(action.get("selected_option")).get("value")
        )
        container = _dict(body.get("container"))
        channel = _text(_dict(body.get("channel")).get("id")) or _text(container.get("channel_id"))
        return cls(
            user_id=_text(_dict(body.get("user")).get("id")),
            value=value,
            channel_id=channel or None,
            message_ts=_text(container.get("message_ts")) or None,
            trigger_id=_text(body.get("trigger_id")) or None,
            in_ephemeral=bool(container.get("is_ephemeral")),
        )


@dataclass(frozen=True)
class Submission:
    """A modal's view_submission: who submitted, its input values, its private metadata."""

    user_id: str
    values: Mapping[str, Any]
    private_metadata: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Submission:
        view = _dict(body.get("view"))
        return cls(
            user_id=_text(_dict(body.get("user")).get("id")),
            values=_dict(_dict(view.get("state")).get("values")),
            private_metadata=_text(view.get("private_metadata")),
        )

    def selected(self, block_id: str, action_id: str) -> str:
        """The value chosen in a select ("" when none)."""
        chosen = _dict(_dict(self.values.get(block_id)).get(action_id))
        return _text(_dict(chosen.get("selected_option")).get("value"))
