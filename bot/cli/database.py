"""``brincr-bot db upgrade | current | downgrade``: the schema's migrations (Alembic)."""

from __future__ import annotations

import sys

import click

from bot.cli.common import config_errors_exit_2, settings_from
from bot.core.errors import ConfigError


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


@db.command("current")
@click.pass_context
@config_errors_exit_2
def db_current(ctx: click.Context) -> None:
    """Show the database's schema revision and whether it is the newest this version knows.

    Reads only. Exit 0 when the schema is up to date, 1 when migrations are pending (or the
    revision is unknown to this version: a newer bot migrated it), 2 when the database cannot
    be used or has no schema yet.
    """
    from bot.cli.common import existing_database
    from bot.core.metrics import VERSION
    from storage.migrate import HEAD, current, known_revisions

    settings = settings_from(ctx)
    revision = current(existing_database(settings))
    if revision is None:
        raise ConfigError(
            ["DATABASE_URL: the database has no brincr-bot schema yet: run `brincr-bot db upgrade`"]
        )
    known = known_revisions()
    if revision == HEAD:
        click.echo(f"{revision} (head): up to date")
        return
    if revision in known:
        pending = known[known.index(revision) + 1 :]
        click.echo(f"{revision}: behind; pending {' '.join(pending)} (head {HEAD})")
    else:
        click.echo(f"{revision}: unknown to brincr-bot {VERSION} (head {HEAD}); a newer version")
        click.echo("migrated this database: run that version, or its `db downgrade`", err=True)
    sys.exit(1)


@db.command("downgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@config_errors_exit_2
def db_downgrade(ctx: click.Context, revision: str, yes: bool) -> None:
    """Take the schema back to REVISION (e.g. 0002, or -1 for one step) before running an
    older brincr-bot. Drops what the later migrations added, data included: take a backup
    first (README, "Backup and restore").
    """
    from bot.cli.common import existing_database
    from bot.core.logs import configure_logging
    from storage.migrate import current, downgrade, known_revisions

    settings = settings_from(ctx)
    url = existing_database(settings)
    known = known_revisions()
    if revision not in known and revision != "base" and not _relative(revision):
        raise ConfigError([f"`{revision[:20]}` is not a revision: one of {', '.join(known)}, "
                           "-1 (one step back) or base (drops every table)"])  # fmt: skip
    now = current(url)
    if now is None:
        raise ConfigError(["DATABASE_URL: the database has no brincr-bot schema: nothing to undo"])
    if not yes:
        click.confirm(
            f"Downgrade the schema from {now} to {revision}? Tables and columns added since are "
            "dropped with their data",
            abort=True,
        )
    configure_logging(settings.log_format, settings.log_level)
    downgrade(url, revision)
    click.echo(f"database schema is now at {current(url) or 'base (empty)'}")


def _relative(revision: str) -> bool:
    return revision.startswith("-") and revision[1:].isdigit() and int(revision[1:]) > 0
