"""What the weekly digest says (bot/fleet/digest.py builds it, bot/fleet/render_digest.py
renders it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from storage.models import Customer, Incident, Invitation


@dataclass(frozen=True)
class WeekIncident:
    incident: Incident
    customer: Customer | None
    downtime: timedelta  # within the week
    open: bool


@dataclass(frozen=True)
class DigestData:
    now: datetime
    since: datetime
    counts: dict[str, int]
    counts_before: dict[str, int]
    scopes_missing: list[Customer]
    revoked: list[Customer]
    waiting: dict[str, list[tuple[Invitation, Customer]]] = field(default_factory=dict)
    incidents: list[WeekIncident] = field(default_factory=list)
    rollout_pending: list[Customer] = field(default_factory=list)  # rollout scopes not ON yet

    @property
    def downtime(self) -> timedelta:
        return sum((i.downtime for i in self.incidents), timedelta())
