"""``serve --role all`` runs the machine's work in a check engine: a worker in a child process
(:class:`bot.runtime.CheckEngine`), so Slack requests never wait behind a sweep. One
``serve`` still does everything: it checks and alerts once, answers people, wakes the
engine's senders for rows the listener writes, reports the engine in ``/readyz`` and
``/metrics``, starts an engine that died again, and takes the engine down with it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.demo.fake_slack import FakeSlack
from bot.domain.roles import Role
from bot.runtime import CheckEngine, Runtime
from bot.simulator import Simulator
from bot.web.metrics import merge
from storage.db import Database
from storage.models import CheckResult, Notification
from storage.statuses import NotificationStatus
from tests.harness import ALERTS, BotHarness, bot_settings, eventually, start_bot, text_of

INTERVAL = "1s"


def _alerts(slack: FakeSlack) -> list[dict[str, Any]]:
    return [m for m in slack.messages(ALERTS) if "thread_ts" not in m]


async def _checks(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(CheckResult)) or 0)


async def _checked_customers(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        distinct = func.count(func.distinct(CheckResult.customer_id))
        return int(await session.scalar(select(distinct)) or 0)


async def _unsent(bot: BotHarness) -> int:
    async with bot.runtime.bot.db.transaction() as session:
        count = select(func.count()).select_from(Notification)
        pending = count.where(Notification.status == NotificationStatus.PENDING)
        return int(await session.scalar(pending) or 0)


async def _engine_bot(
    database_url: str, slack: FakeSlack, sim: Simulator, **overrides: Any
) -> tuple[BotHarness, CheckEngine]:
    bot = await start_bot(
        database_url, slack, sim, schedule=True, check_engine=True, check_interval=INTERVAL,
        **overrides,
    )  # fmt: skip
    engine = bot.runtime.engine
    assert engine is not None and engine.pid is not None and engine.pid != os.getpid()
    return bot, engine


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_the_engine_checks_and_alerts_once_while_the_listener_answers(
    database_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot, _ = await _engine_bot(database_url, slack, sim)
    try:
        # Onboarded one at a time, each checked before the next comes: each its own slot.
        for i in range(4):
            await bot.add_customer(f"2000000{i}", f"Klant {i}")

            async def first_check(onboarded: int = i + 1) -> bool:
                return await _checked_customers(bot) == onboarded

            await eventually(first_check, timeout=15)
        tenant = "6a1f0c4e-1111-4222-8333-444455556666"
        await bot.add_customer("12345678", "Bouwbedrijf Engine", tenant_id=tenant)
        before = await _checks(bot)

        async def checked() -> bool:
            return await _checks(bot) > before

        await eventually(checked, timeout=15)
        sim.revoke(tenant, ["brincr:order"])

        async def alerted() -> bool:
            return len(_alerts(slack)) == 1

        await eventually(alerted, timeout=15)
        response, key = await bot.command("status 12345678")
        assert response.status_code == 200
        assert "brincr:order" in text_of(await bot.reply(key))
        ready = (await bot.http.get(bot.url + "/readyz")).json()
        assert ready["ok"] is True and ready["role"] == "all"
        assert set(ready["checks"]) == {"database", "scheduler"}
        checked_before = await _checks(bot)

        async def checked_twice_more_and_sent() -> bool:  # the engine's checks and sender
            return await _checks(bot) >= checked_before + 2 and await _unsent(bot) == 0

        await eventually(checked_twice_more_and_sent, timeout=15)
        assert len(_alerts(slack)) == 1  # the incident stays one alert
        # /metrics counts what the engine did: its checks, its sweeps, its deliveries.
        text = (await bot.http.get(bot.url + "/metrics")).text
        assert sum(_samples(text, "brincr_checks_total").values()) >= checked_before + 2
        assert _samples(text, "brincr_last_sweep_completed_timestamp_seconds")[()] > 0
        assert _samples(text, "brincr_outbox_delivered_total")[()] >= 1
        assert _samples(text, "brincr_build_info")  # once, from the listener
    finally:
        await bot.close()
    # The sweeps ran in the engine, never on the listener's own scheduler, and every row was
    # delivered by the engine's sender (it claims as <worker>/checks).
    assert bot.runtime.bot.scheduler.last_sweep is None
    db = Database(database_url)
    async with db.transaction() as session:
        senders = set(await session.scalars(select(Notification.claimed_by)))
    await db.close()
    assert senders == {"test/checks"}


async def test_a_row_the_listener_writes_wakes_the_engines_sender(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, tmp_path: Path
) -> None:
    engine_log = tmp_path / "engine.log"
    with _stderr_to(engine_log):  # the engine's stderr, not pytest's capture (read lossily)
        bot, _ = await _engine_bot(sqlite_url, slack, sim, log_level="DEBUG")
    try:
        bot.runtime.bot.services.wake_outbox()  # what a listener's service does after writing

        async def woken() -> bool:
            return "woken by the listener" in engine_log.read_text()

        await eventually(woken)
    finally:
        await bot.close()


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Processes started meanwhile write their stderr to ``path``."""
    saved = os.dup(2)
    with path.open("ab") as file:
        os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@pytest.mark.expected_errors("ended with exit code -9")
async def test_an_engine_that_dies_is_started_again_and_readyz_says_so_meanwhile(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    bot, engine = await _engine_bot(sqlite_url, slack, sim)
    first = engine.pid
    assert first is not None
    try:
        os.kill(first, signal.SIGKILL)

        async def not_ready() -> bool:
            answer = await bot.http.get(bot.url + "/readyz")
            return answer.status_code == 503

        await eventually(not_ready)
        answer = (await bot.http.get(bot.url + "/readyz")).json()
        assert answer["checks"]["scheduler"] == {"ok": False, "detail": "failing"}
        assert answer["checks"]["database"]["ok"] is True

        async def ready_again() -> bool:
            answer = await bot.http.get(bot.url + "/readyz")
            return answer.status_code == 200

        await eventually(ready_again, timeout=15)
        assert engine.starts == 2 and engine.pid not in (None, first)
        assert "ended with exit code -9" in caplog.text
        await bot.add_customer("12345678", "Bouwbedrijf Opnieuw")  # and it checks again
        checked = await _checks(bot)

        async def checks_again() -> bool:
            return await _checks(bot) > checked

        await eventually(checks_again, timeout=15)
    finally:
        await bot.close()


async def test_stopping_stops_the_engine_process_and_a_second_start_works(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    bot, engine = await _engine_bot(sqlite_url, slack, sim)
    pid, directory = engine.pid, Path(engine.socket_path).parent
    assert pid is not None and directory.is_dir()
    await bot.close()
    assert engine.pid is None and not directory.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # ended and reaped
    again, _ = await _engine_bot(sqlite_url, slack, sim)  # a restart on the same database
    await again.close()


async def test_an_engine_whose_listener_dies_stops_by_itself(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    """A listener killed without a word (SIGKILL, the OOM killer) closes its end of the pair
    by dying: the engine sees the end and stops, it never checks on as an orphan."""
    settings = bot_settings(sqlite_url, sim, slack)
    engine = CheckEngine(settings, worker_id="orphan/checks")
    await engine.start(schedule=True, verify_slack=False)
    process = engine._process
    assert process is not None and engine._channel is not None
    engine._stopping = True  # what dying does to the watcher: nobody starts it again
    engine._channel.close()  # what dying does to the pair
    try:
        await asyncio.to_thread(process.join, 15)
        assert process.exitcode == 0
    finally:
        if process.exitcode is None:
            process.kill()
            process.join()
        await engine.stop()


def test_only_role_all_on_a_shared_database_without_a_test_transport_gets_an_engine(
    sqlite_url: str, slack: FakeSlack, sim: Simulator
) -> None:
    """A second process would see a different, empty in-memory database; web and worker
    replicas are one half each already; a test's in-process transport cannot be shared."""
    import httpx

    memory = bot_settings("sqlite:///:memory:", sim, slack)
    assert Runtime(memory, check_engine=True).engine is None
    on_file = bot_settings(sqlite_url, sim, slack)
    assert Runtime(on_file, check_engine=True).engine is not None
    assert Runtime(on_file).engine is None
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    assert Runtime(on_file, check_engine=True, transport=transport).engine is None
    for role in (Role.WEB, Role.WORKER):
        assert Runtime(on_file, role=role, check_engine=True).engine is None


def test_two_expositions_merge_as_if_one_process_had_counted() -> None:
    listener = (
        "# HELP brincr_build_info The running brincr-bot's version (always 1)\n"
        "# TYPE brincr_build_info gauge\n"
        'brincr_build_info{version="1.2.3"} 1.0\n'
        "# HELP brincr_checks_total Health checks run\n"
        "# TYPE brincr_checks_total counter\n"
        'brincr_checks_total{state="connected"} 2.0\n'
        "# HELP brincr_last_sweep_completed_timestamp_seconds Last sweep\n"
        "# TYPE brincr_last_sweep_completed_timestamp_seconds gauge\n"
        "brincr_last_sweep_completed_timestamp_seconds 0.0\n"
        "# HELP brincr_check_duration_seconds Wall time\n"
        "# TYPE brincr_check_duration_seconds histogram\n"
        'brincr_check_duration_seconds_bucket{le="0.1"} 1.0\n'
        'brincr_check_duration_seconds_bucket{le="+Inf"} 2.0\n'
        "brincr_check_duration_seconds_count 2.0\n"
        "brincr_check_duration_seconds_sum 0.3\n"
    )
    engine = (
        listener.replace('state="connected"} 2.0', 'state="connected"} 5.0')
        .replace("seconds 0.0", "seconds 1700000000.0")
        .replace("# TYPE brincr_checks_total counter\n", "# TYPE brincr_checks_total counter\n"
                 'brincr_checks_total{state="revoked"} 1.0\n')
    )  # fmt: skip
    merged = merge(listener, engine).decode()
    assert _samples(merged, "brincr_checks_total") == {
        (("state", "connected"),): 7.0,
        (("state", "revoked"),): 1.0,
    }
    assert _samples(merged, "brincr_last_sweep_completed_timestamp_seconds") == {(): 1.7e9}
    assert _samples(merged, "brincr_check_duration_seconds_bucket") == {
        (("le", "0.1"),): 2.0,
        (("le", "+Inf"),): 4.0,
    }
    assert _samples(merged, "brincr_check_duration_seconds_count") == {(): 4.0}
    assert merged.count("brincr_build_info{") == 1


async def test_unreadable_engine_metrics_leave_the_listeners_own(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.web.metrics import render

    db = Database(sqlite_url)
    try:
        body, _ = await render(db, more='brincr_checks_total{state="x" 1\n')
    finally:
        await db.close()
    assert _samples(body.decode(), "brincr_build_info")
    assert "metrics are unreadable" in caplog.text
