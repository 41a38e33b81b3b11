"""``brincr-bot serve``: the bot itself."""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from bot.cli.common import config_errors_exit_2, settings_from
from bot.core.errors import ConfigError
from bot.core.loop import abandon_stuck_tasks, run_event_loop
from bot.domain.roles import Role
from bot.settings import Settings

log = logging.getLogger(__name__)


def _serve_problems(settings: Settings, role: Role = Role.ALL) -> list[str]:
    problems = [f"{n.upper()} is not set" for n in ("slack_bot_token", "alert_channel")
                if not getattr(settings, n)]  # fmt: skip
    # A worker never listens to Slack: no signing secret needed (it still posts alerts).
    if role.answers and not settings.socket_mode and not settings.slack_signing_secret:
        problems.append(
            "SLACK_SIGNING_SECRET is not set (HTTP mode needs it; or set SLACK_APP_TOKEN)"
        )
    return problems + settings.problems_for_checks()


def split_on_sqlite(settings: Settings, role: Role) -> str | None:
    """The warning for a web/worker split on SQLite, or None: the roles exist to run several
    replicas, and replicas share one database only on PostgreSQL."""
    if role is Role.ALL or not settings.database_url.startswith("sqlite"):
        return None
    return (
        f"--role {role.value} on SQLite: a web/worker split needs replicas that share one "
        "database; use PostgreSQL (DATABASE_URL=postgresql://...) or run --role all"
    )


async def _serve(settings: Settings, role: Role) -> None:
    from bot.runtime import Runtime, run_until_stopped

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_until_stopped(Runtime(settings, role=role, check_engine=True), stop)
    await abandon_stuck_tasks()


@click.command()
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.ALL.value,
    show_default=True,
    help="web: answers Slack, the Visma webhook and the API, never checks on schedule or "
    "delivers; worker: checks, alerts and delivers, never listens to Slack (serves only "
    "/healthz, /readyz, /metrics); all: both.",
)
@click.pass_context
@config_errors_exit_2
def serve(ctx: click.Context, role: str) -> None:
    """Run the bot: Slack (Socket Mode when SLACK_APP_TOKEN is set, else HTTP on HOST:PORT),
    scheduled checks, alerts, the Visma webhook and /healthz, /readyz, /metrics.
    Applies pending database migrations first. --role splits the work between replicas."""
    from bot.core.logs import configure_logging
    from storage.migrate import upgrade

    settings = settings_from(ctx)
    chosen = Role(role)
    problems = _serve_problems(settings, chosen)
    if problems:
        raise ConfigError(problems)
    configure_logging(settings.log_format, settings.log_level)
    if (warning := split_on_sqlite(settings, chosen)) is not None:
        log.warning(warning)
    upgrade(settings.database_url)
    run_event_loop(_serve(settings, chosen))
    log.info("stopped")
