"""When to try again: the one ``Retry-After`` reader and the one backoff with jitter.

Every retry in the bot goes through here: the Slack outbox, PagerDuty events, Visma webhook
deliveries, the check scheduler (customers in trouble), Visma/Brincr answers and interactive
replies. Pure, no I/O; the random source is injectable for tests.

Backoff doubles from ``first`` up to ``cap`` and is then shortened by up to ``spread`` (25 %)
at random ("equal jitter" with a narrower band, see
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/), so rows that failed
together (a Slack outage hits every queued alert) do not all come back in the same second,
and no wait is ever longer than the schedule it documents. Hand-written rather than
tenacity/backoff: those run a retry *loop* around a call, while here a delay is computed and
stored on a row (``next_attempt_at``), and the loop is the sender's next tick.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

MAX_RETRY_AFTER = 24 * 3600.0  # seconds; each caller bounds it further (CHECK_INTERVAL, …)
SPREAD = 0.25  # a backoff is shortened by up to this share, at random


def retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` (RFC 9110 §10.2.3: seconds or an HTTP-date) as seconds from ``now``,
    in ``[0, MAX_RETRY_AFTER]``; None when absent or unreadable (``nan``, garbage)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, now)
    if seconds is None or math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))  # inf and 1e9 end at the cap


def header_retry_after(headers: Mapping[str, Any] | None, now: datetime) -> float | None:
    """:func:`retry_after` of a response's headers, whatever their case or container (httpx,
    aiohttp and slack-sdk hand them over differently; slack-sdk may give a list)."""
    for key, value in dict(headers or {}).items():
        if str(key).lower() == "retry-after":
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            return retry_after(None if value is None else str(value), now)
    return None


def _seconds_until(text: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


@dataclass(frozen=True)
class Backoff:
    """``first`` after the first failure, doubling to ``cap``; each wait shortened by up to
    ``spread`` at random."""

    first: timedelta
    cap: timedelta
    spread: float = SPREAD

    def ceiling(self, failures: int) -> timedelta:
        """The wait after ``failures`` failures before jitter: the documented schedule."""
        return min(self.first * 2 ** min(max(failures, 1) - 1, 30), self.cap)

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> timedelta:
        """The wait after ``failures`` failures: in ``(ceiling·(1 − spread), ceiling]``."""
        return self.ceiling(failures) * (1.0 - self.spread * rand())
