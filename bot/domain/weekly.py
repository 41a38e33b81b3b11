"""A weekly moment such as ``mon 09:00`` (``DIGEST_SCHEDULE``) and the slots it names.

A *slot* is one occurrence of the schedule: the aware datetime (in the schedule's time zone)
at which it falls. Replicas claim a slot by its ISO form, so each slot is worked once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKLY_USAGE = "a day and a time, e.g. `mon 09:00`"
_WEEKLY_RE = re.compile(r"^\s*([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Weekly:
    weekday: int  # Monday is 0
    at: time

    def last_slot(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The most recent occurrence at or before ``now``, as an aware time in ``tz``."""
        local = now.astimezone(tz)
        days_back = (local.weekday() - self.weekday) % 7
        day = (local - timedelta(days=days_back)).date()
        slot = datetime.combine(day, self.at, tzinfo=tz)
        if slot > local:
            slot = datetime.combine(day - timedelta(days=7), self.at, tzinfo=tz)
        return slot


def parse_weekly(text: str) -> Weekly:
    """``mon 09:00`` (or ``monday 9:00``) → Weekly; ValueError naming the right form."""
    match = _WEEKLY_RE.match(text)
    if match is None or match.group(1).lower() not in DAYS:
        raise ValueError(f"expected {WEEKLY_USAGE}")
    hour, minute = int(match.group(2)), int(match.group(3))
    if hour > 23 or minute > 59:
        raise ValueError(f"expected {WEEKLY_USAGE}")
    return Weekly(DAYS.index(match.group(1).lower()), time(hour, minute))
