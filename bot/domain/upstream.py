"""Values that come from Visma Connect or the Brincr API, validated before anything uses them.

Upstream answers are not trusted to be sane: ``Retry-After: inf`` or ``1e9``, ``expires_in:
"soon"``, an error code of 150 characters or with a NUL byte in it (PostgreSQL refuses those
in text). Each parser here returns a bounded value or None and never raises. Pure, no I/O.
"""

from __future__ import annotations

import math

MAX_ERROR_CODE = 100  # check_results.error_code is String(100)
MAX_ERROR_TEXT = 500
MAX_EXPIRES_IN = 366 * 24 * 3600


def expires_in(value: object) -> int | None:
    """``expires_in`` of a token answer as whole seconds, or None when missing or unreadable
    ("soon", "", ``true``); ``3600.5`` and ``"3600"`` are read, absurd values bounded."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        seconds = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return int(min(seconds, MAX_EXPIRES_IN))


def clean_text(value: object, limit: int) -> str | None:
    """Upstream text made safe to store: NUL and other control characters (but newlines and
    tabs) removed, at most ``limit`` characters; None when nothing is left."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():
        text = "".join(c for c in text if c.isprintable() or c in "\n\t")
    text = text[:limit]
    return text or None


def error_code(value: object) -> str | None:
    """An upstream ``error`` member, kept verbatim (docs/domain.md, token errors) up to the
    schema's limit."""
    return clean_text(value, MAX_ERROR_CODE)
