"""``brincr-bot db upgrade``: apply pending migrations."""

from __future__ import annotations

import click

from bot.cli.common import config_errors_exit_2, settings_from


@click.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.pass_context
@config_errors_exit_2
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending database migrations (Alembic)."""
    from bot.core.logs import configure_logging
    from storage.migrate import upgrade

    settings = settings_from(ctx)
    configure_logging(settings.log_format, settings.log_level)
    upgrade(settings.database_url)
    click.echo("database is up to date")
