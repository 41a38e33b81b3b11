"""``brincr-bot serve``: the bot itself."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import click

from bot.cli.common import config_errors_exit_2, run_event_loop, settings_from
from bot.core.errors import ConfigError
from bot.settings import Settings

log = logging.getLogger(__name__)


def _serve_problems(settings: Settings) -> list[str]:
    problems = [f"{n.upper()} is not set" for n in ("slack_bot_token", "alert_channel")
                if not getattr(settings, n)]  # fmt: skip
    if not settings.socket_mode and not settings.slack_signing_secret:
        problems.append(
            "SLACK_SIGNING_SECRET is not set (HTTP mode needs it; or set SLACK_APP_TOKEN)"
        )
    return problems + settings.problems_for_checks()


async def _serve(settings: Settings) -> None:
    from bot.runtime import Runtime, run_until_stopped

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_until_stopped(Runtime(settings), stop)
    await abandon_stuck_tasks()


async def abandon_stuck_tasks() -> None:
    """Exit now even if work cut at the stop deadline is still stuck on a stalled database:
    psycopg answers a cancellation with a cancel request and a wait of 5 s each (both
    hard-coded, psycopg/connection_async.py ``wait``), and ``asyncio.run`` would wait for
    them. Nothing is lost by not waiting: claims expire, outbox rows are retried."""
    current = asyncio.current_task()
    leftovers = [task for task in asyncio.all_tasks() if task is not current]
    for task in leftovers:
        task.cancel()
    if not leftovers:
        return
    _, pending = await asyncio.wait(leftovers, timeout=ABANDON_AFTER)
    if pending:
        log.warning("%d task(s) stuck on the database abandoned; stopped", len(pending))
        logging.shutdown()
        os._exit(0)


ABANDON_AFTER = 1.0  # seconds cancelled tasks get before the process exits without them


@click.command()
@click.pass_context
@config_errors_exit_2
def serve(ctx: click.Context) -> None:
    """Run the bot: Slack (Socket Mode when SLACK_APP_TOKEN is set, else HTTP on HOST:PORT),
    scheduled checks, alerts, the Visma webhook and /healthz, /readyz, /metrics.
    Applies pending database migrations first."""
    from bot.core.logs import configure_logging
    from storage.migrate import upgrade

    settings = settings_from(ctx)
    problems = _serve_problems(settings)
    if problems:
        raise ConfigError(problems)
    configure_logging(settings.log_format, settings.log_level)
    upgrade(settings.database_url)
    run_event_loop(_serve(settings))
    log.info("stopped")
