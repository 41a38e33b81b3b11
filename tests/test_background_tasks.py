"""Every background task of the runtime ends in a line of ours: an exception it did not handle
is logged as an ERROR with its traceback, never asyncio's "Task exception was never
retrieved" at garbage collection."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from tests.harness import start_bot


@pytest.mark.expected_errors("background task boom failed")
async def test_a_background_task_that_raises_is_logged_once_by_us(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot(sqlite_url, slack, sim)

    async def boom() -> None:
        raise AttributeError("'str' object has no attribute 'get'")

    try:
        with caplog.at_level(logging.ERROR):
            bot.runtime._in_background(boom(), "boom")
            await asyncio.sleep(0.05)
            gc.collect()
            await asyncio.sleep(0)
    finally:
        await bot.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["background task boom failed: AttributeError"]
    assert errors[0].exc_info is not None
    assert "never retrieved" not in caplog.text
