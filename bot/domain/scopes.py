"""Which scopes a check asks for and judges by, at one moment (bot.settings.Settings.terms)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ScopeTerms:
    required: tuple[str, ...]  # every customer must grant these (alerted when missing)
    rollout: tuple[str, ...] = ()  # being rolled out: tracked, never alerted
    deadline: date | None = None  # from this day on the rollout scopes are required
