"""The one Retry-After reader and the one backoff (bot.domain.retrying)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.retrying import Backoff, header_retry_after

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after": "7"}, 7.0),
        ({"RETRY-AFTER": ["30"]}, 30.0),  # slack-sdk hands some headers over as lists
        ({"Retry-After": "Sun, 29 Nov 2026 12:01:00 GMT"}, 60.0),
        ({"Retry-After": "soon"}, None),
        ({"Content-Type": "text/plain"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_is_read_from_any_headers(
    headers: dict[str, object] | None, seconds: float | None
) -> None:
    assert header_retry_after(headers, NOW) == seconds  # type: ignore[arg-type]


def test_backoff_doubles_to_its_cap() -> None:
    backoff = Backoff(first=timedelta(seconds=2), cap=timedelta(minutes=15))
    ceilings = [backoff.ceiling(n).total_seconds() for n in range(1, 12)]
    assert ceilings == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert backoff.ceiling(10_000) == timedelta(minutes=15)


def test_backoff_is_shortened_by_at_most_a_quarter_at_random() -> None:
    backoff = Backoff(first=timedelta(seconds=2), cap=timedelta(minutes=15))
    assert backoff.delay(3, rand=lambda: 0.0) == timedelta(seconds=8)
    assert backoff.delay(3, rand=lambda: 1.0) == timedelta(seconds=6)
    waits = {backoff.delay(20) for _ in range(50)}
    assert len(waits) > 40  # rows that failed together come back spread out
    assert all(timedelta(seconds=675) <= w <= timedelta(minutes=15) for w in waits)
