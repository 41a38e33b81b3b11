"""The values of a scope rollout that flow from the service (bot/onboarding/rollout.py) to its
renderers (bot/onboarding/render_rollout.py). Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from storage.rollouts import Standing, lacking


@dataclass(frozen=True)
class Progress:
    """One environment's progress in a rollout."""

    environment: str
    scopes: tuple[str, ...]
    customers: list[Standing]  # linked customers of the environment

    @property
    def total(self) -> int:
        return len(self.customers)

    @property
    def switched(self) -> int:
        return sum(1 for c in self.customers if c.switched_on)

    @property
    def missing(self) -> list[Standing]:
        return lacking(self.customers)

    @property
    def shown(self) -> str:
        return f"{self.switched}/{self.total}"


@dataclass(frozen=True)
class RolloutView:
    scopes: tuple[str, ...]
    deadline: date | None
    enforced: bool
    environments: list[Progress] = field(default_factory=list)


@dataclass(frozen=True)
class RemindReport:
    sent: dict[str, list[Standing]]  # account manager (Slack user ID) → customers
    earlier: dict[str, str]  # account manager → when today's reminder went (ISO)
    unassigned: list[Standing]  # no account manager, or one that is not a Slack user
