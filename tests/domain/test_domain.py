from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.errors import UserError
from bot.domain import (
    format_duration,
    parse_duration,
    parse_kvk,
    parse_scopes,
    parse_tenant_id,
)


@pytest.mark.parametrize("text", ["12345678", "1234 5678", "12.34.56.78", " 12345678 "])
def test_kvk_ignores_spaces_and_dots(text: str) -> None:
    assert parse_kvk(text) == "12345678"


@pytest.mark.parametrize("text", ["1234567", "123456789", "abcdefgh", "", "1234-5678", "x" * 5000])
def test_malformed_kvk_is_refused_with_the_right_form(text: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_kvk(text)
    assert caught.value.usage and "8 digits" in caught.value.usage
    assert len(str(caught.value)) < 100  # never echoes 5,000 characters back


def test_tenant_id_is_normalised() -> None:
    assert (
        parse_tenant_id("3FA85F64-5717-4562-B3FC-2C963F66AFA6")
        == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    )


@pytest.mark.parametrize("text", ["not-a-uuid", "3fa85f64-5717-4562-b3fc", "", "1" * 500])
def test_malformed_tenant_id_is_refused(text: str) -> None:
    with pytest.raises(UserError, match="not a tenant ID"):
        parse_tenant_id(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("4h", 14400), ("7d", 604800), ("1w", 604800), ("2H", 7200)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "0m", "-5m", "1.5h", "15 minutes", "9999999d"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(UserError, match="not a duration"):
        parse_duration(text)


def test_scopes_and_durations_format() -> None:
    assert parse_scopes("a b,a  c") == ("a", "b", "c")
    assert format_duration(timedelta(days=1, hours=4, minutes=3)) == "1d 4h"
