"""``brincr_last_sweep_completed_timestamp_seconds``: when this process last completed a sweep
(the "bot not sweeping" rule in examples/prometheus-rules.yml watches it)."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from tests.harness import start_bot

NAME = "brincr_last_sweep_completed_timestamp_seconds"


async def test_a_completed_sweep_sets_the_time(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot = await start_bot(sqlite_url, slack, sim)
    try:
        await bot.add_customer("12345678", "Bouwbedrijf")
        before = time.time()
        assert await bot.runtime.bot.scheduler.sweep() == 1
        swept = REGISTRY.get_sample_value(NAME)
        assert swept is not None and before <= swept <= time.time()
        await bot.runtime.bot.scheduler.sweep_tick()  # the scheduled form sets it too
        again = REGISTRY.get_sample_value(NAME)
        assert again is not None and again >= swept
        text = (await bot.http.get(bot.url + "/metrics")).text
        assert f"{NAME} " in text
    finally:
        await bot.close()
