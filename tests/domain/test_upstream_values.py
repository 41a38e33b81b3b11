"""Upstream values parsed to bounded values, never an exception (bot.domain.upstream,
bot.domain.retrying)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain import retrying, upstream

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("inf", retrying.MAX_RETRY_AFTER),
        ("1e9", retrying.MAX_RETRY_AFTER),
        ("-5", 0.0),
        ("-inf", 0.0),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Sun, 29 Nov 2026 12:01:00 GMT", 60.0),
        ("Sun, 29 Nov 2026 11:00:00 GMT", 0.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", retrying.MAX_RETRY_AFTER),
    ],
)
def test_retry_after_is_seconds_or_a_date_bounded_or_none(
    header: str | None, seconds: float | None
) -> None:
    assert retrying.retry_after(header, NOW) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (3600, 3600),
        ("3600", 3600),
        (3600.5, 3600),
        ("3600.5", 3600),
        ("soon", None),
        (None, None),
        (True, None),
        (0, None),
        (-1, None),
        (float("inf"), None),
        ("nan", None),
        (1e308, upstream.MAX_EXPIRES_IN),
        ([3600], None),
    ],
)
def test_expires_in_is_whole_seconds_or_none(value: object, seconds: int | None) -> None:
    assert upstream.expires_in(value) == seconds


def test_error_codes_and_texts_fit_the_schema_without_control_characters() -> None:
    assert upstream.error_code("e" * 150) == "e" * 100
    assert upstream.error_code("bad\x00code") == "badcode"
    assert upstream.clean_text("line one\nline\ttwo\x07", 500) == "line one\nline\ttwo"
    assert upstream.clean_text("\x00", 500) is None
    assert upstream.clean_text(None, 500) is None
    assert upstream.clean_text(42, 500) == "42"
