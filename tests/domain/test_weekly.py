"""The weekly schedule text (``DIGEST_SCHEDULE``) and the slot it names at a given time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.errors import ConfigError
from bot.domain.weekly import parse_weekly
from bot.settings import load_settings

AMS = ZoneInfo("Europe/Amsterdam")


def test_the_last_slot_is_this_weeks_when_it_has_passed() -> None:
    weekly = parse_weekly("mon 09:00")
    now = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # Monday 09:30 in Amsterdam
    assert weekly.last_slot(now, AMS) == datetime(2026, 11, 30, 9, 0, tzinfo=AMS)


def test_the_last_slot_is_last_weeks_before_the_time() -> None:
    weekly = parse_weekly("Monday 9:00")
    now = datetime(2026, 11, 30, 7, 59, tzinfo=UTC)  # Monday 08:59 in Amsterdam
    assert weekly.last_slot(now, AMS) == datetime(2026, 11, 23, 9, 0, tzinfo=AMS)


@pytest.mark.parametrize("text", ["", "someday 09:00", "mon 25:00", "mon", "09:00"])
def test_a_bad_schedule_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="mon 09:00"):
        parse_weekly(text)


def test_settings_name_a_bad_schedule_and_time_zone() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(digest_schedule="often", timezone="Mars/Olympus")
    text = " ".join(caught.value.problems)
    assert "DIGEST_SCHEDULE" in text and "TIMEZONE" in text


def test_api_tokens_are_secret_and_comma_separated() -> None:
    settings = load_settings(api_tokens="tok-one, tok-two")
    assert [t.get_secret_value() for t in settings.api_tokens] == ["tok-one", "tok-two"]
    assert "tok-one" not in repr(settings)
