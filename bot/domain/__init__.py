"""Domain values: states, environments and the parsers for what people type.

Every parser raises :class:`~bot.core.errors.UserError` with a message that names the problem
and the right form, so a handler can show it as is.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from enum import StrEnum

from bot.core.errors import UserError


class Environment(StrEnum):
    PRODUCTION = "production"
    SANDBOX = "sandbox"


class State(StrEnum):
    """The one word shown by ``status`` and ``list`` (docs/interface.md, "Connection states")."""

    INVITED = "invited"
    PENDING = "pending"
    HEALTHY = "healthy"
    SCOPES_MISSING = "scopes_missing"
    REVOKED = "revoked"
    FAILING = "failing"
    UNKNOWN = "unknown"


# Worst first: the order of `list` and of the App Home.
STATE_SEVERITY: dict[State, int] = {
    State.REVOKED: 0,
    State.SCOPES_MISSING: 1,
    State.FAILING: 2,
    State.UNKNOWN: 3,
    State.PENDING: 4,
    State.INVITED: 5,
    State.HEALTHY: 6,
}

KVK_USAGE = "a KvK number has 8 digits, e.g. `12345678` (spaces and dots are ignored)"
TENANT_USAGE = "a tenant ID is a UUID, e.g. `3fa85f64-5717-4562-b3fc-2c963f66afa6`"
DURATION_USAGE = "a duration is a number and a unit: `90s`, `15m`, `4h`, `7d` or `1w`"

_KVK_RE = re.compile(r"^\d{8}$")
_DURATION_RE = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_ECHO = 40  # how much of a bad value an error message repeats


def _shorten(value: str) -> str:
    return value if len(value) <= MAX_ECHO else value[:MAX_ECHO] + "…"


def normalize_kvk(text: str) -> str | None:
    """The 8-digit KvK number in ``text`` (spaces and dots ignored), or None if it is not one."""
    candidate = re.sub(r"[\s.]", "", text)
    return candidate if _KVK_RE.match(candidate) else None


def parse_kvk(text: str) -> str:
    kvk = normalize_kvk(text)
    if kvk is None:
        raise UserError("{echo} is not a KvK number", echo=_shorten(text.strip()), usage=KVK_USAGE)
    return kvk


def normalize_tenant_id(text: str) -> str | None:
    """The canonical lower-case UUID form of ``text``, or None if it is not a UUID."""
    try:
        value = uuid.UUID(text.strip())
    except ValueError:
        return None
    return str(value)


def parse_tenant_id(text: str) -> str:
    tenant_id = normalize_tenant_id(text) if len(text) < 64 else None
    if tenant_id is None:
        raise UserError(
            "{echo} is not a tenant ID", echo=_shorten(text.strip()), usage=TENANT_USAGE
        )
    return tenant_id


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``4h``, ``7d``, ``1w`` → timedelta; zero and bad forms are refused."""
    match = _DURATION_RE.match(text)
    if match is None or int(match.group(1)) == 0:
        raise UserError(
            "{echo} is not a duration", echo=_shorten(text.strip()), usage=DURATION_USAGE
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


MAX_SNOOZE = timedelta(days=30)
SNOOZE_USAGE = "`/brincr snooze <customer> <duration>`, e.g. `4h`, `1d` or `1w` (at most 30 days)"


def parse_snooze(text: str) -> timedelta:
    """A snooze's length, the same rule for the command and the alert's menu: a duration of
    at most 30 days (UserError otherwise)."""
    duration = parse_duration(text)
    if duration > MAX_SNOOZE:
        raise UserError(
            f"{format_duration(duration)} is longer than the 30 days a snooze may last",
            usage=SNOOZE_USAGE,
        )
    return duration


def format_duration(value: timedelta) -> str:
    """A short human form: ``1d 4h``, ``15m``, ``45s``."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts) or "0s"


def parse_scopes(text: str) -> tuple[str, ...]:
    """Space- or comma-separated scopes, de-duplicated, order kept."""
    seen: dict[str, None] = {}
    for scope in re.split(r"[\s,]+", text.strip()):
        if scope:
            seen.setdefault(scope, None)
    return tuple(seen)
