"""One incident for one cause: when many customers of an environment are broken in the same
way at once (a scope added to ``BRINCR_SCOPES``, an app change at Visma), one grouped
incident names the cause and the count instead of one alert per customer.

**The cause** of a broken customer is its state and its reason: for ``scopes_missing`` the
exact set of missing scopes, for ``revoked`` and ``failing`` the error code (the part of the
reason before the first ``:``).

**The threshold** that separates "a customer" from "a rollout": at least
:data:`GROUP_MIN` (5) customers of one environment in the same state for the same cause,
none of them alerted on its own yet (not snoozed, not in an open incident or group). Below
that, separate alerts are no storm (a percentage of the environment would group 2 or 3
customers of a small one, which reads worse than their own alerts); above it, one message
replaces N. Customers break together within one check interval when the cause is shared (a
rollout reaches everybody's next check), and the sweep records its checks in batches before
alerting, so a rollout's first batch already forms the group: at most the customers checked
before the threshold is reached alert on their own.

A group is an :class:`~storage.models.Incident` with ``kind="group"``; its customers are
:class:`~storage.models.IncidentMember` rows (queries in :mod:`storage.groups`). Customers
breaking the same way later join it (the message is updated in place); a recovering customer
leaves it; the last one leaving resolves it. The message lists up to :data:`SHOWN` customers,
the complete list goes in its thread when it opens. Acknowledge, Snooze and Resolve act on the
group. Each customer's own state stays its own (``status``), with a pointer to the group.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bot.domain import State
from storage.groups import Member
from storage.models import Customer

__all__ = ["GROUP_MIN", "SHOWN", "THREAD_CHUNK", "Cause", "Member", "group_threshold"]

GROUP_MIN = 5
SHOWN = 25  # customers listed in the message; the thread has them all
THREAD_CHUNK = 50  # customers per thread reply


def group_threshold() -> int:
    """How many customers with one cause make a group (see the module docstring)."""
    return GROUP_MIN


@dataclass(frozen=True)
class Cause:
    environment: str
    state: str
    signature: str  # the missing scopes, or the error code

    @classmethod
    def of(cls, customer: Customer) -> Cause:
        if customer.state == State.SCOPES_MISSING:
            return cls(customer.environment, customer.state, customer.missing_scopes)
        code = (customer.state_reason or "").split(":", 1)[0].strip()
        return cls(customer.environment, customer.state, code)

    @property
    def key(self) -> str:
        """The group's ``open_key`` / ``upstream_key`` (at most 64 characters)."""
        digest = hashlib.sha256(self.signature.encode()).hexdigest()[:12]
        return f"group:{self.environment}:{self.state}:{digest}"

    @property
    def plain(self) -> str:
        """The cause in a few words (plain text: the renderer escapes it)."""
        if self.state == State.SCOPES_MISSING:
            return "missing scopes: " + ", ".join(self.signature.split())
        return self.signature or "no details"
