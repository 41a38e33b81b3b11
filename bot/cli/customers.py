"""``brincr-bot customers import FILE.csv`` and ``customers export [--with-state]``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from bot.cli.common import config_errors_exit_2, migrated_database, settings_from
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade


@click.group()
def customers() -> None:
    """Bulk load or dump customers (CSV: kvk,name,environment,tenant_id,account_manager)."""


async def _import(settings: Settings, text: str) -> Any:
    from bot.fleet.customers_csv import import_customers, parse_csv

    parsed = parse_csv(text)  # every row validated; import_customers refuses bad files
    if parsed.extra_columns:
        click.echo(f"line 1: column(s) not imported: {', '.join(parsed.extra_columns)}", err=True)
    db = Database(settings.database_url)
    try:
        with _progress(len(parsed.rows)) as advance:
            async with db.transaction() as session:
                return await import_customers(parsed, session=session, progress=advance)
    finally:
        await db.close()


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on standard error when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty() or total < 1000:
        yield lambda _n: None
        return
    with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
        yield bar.update


@customers.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.pass_context
@config_errors_exit_2
def customers_import(ctx: click.Context, file: Any) -> None:
    """Import customers from FILE.csv: all rows valid, or nothing is stored (exit 1).

    Comma- or semicolon-separated (sniffed); columns kvk,name,environment,tenant_id,
    account_manager (a Slack user ID); the state columns of an export are ignored.
    """
    from bot.fleet.customers_csv import ImportRejected

    settings = settings_from(ctx)
    upgrade(settings.database_url)
    try:
        report = asyncio.run(_import(settings, file.read()))
    except ImportRejected as rejected:
        for problem in rejected.problems:
            click.echo(problem, err=True)
        click.echo(f"{rejected}", err=True)
        sys.exit(1)
    click.echo(f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged")


async def _export(settings: Settings, with_state: bool) -> None:
    from bot.fleet.customers_csv import export_customers

    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            rollout = bool(settings.brincr_rollout_scopes)
            async for chunk in export_customers(
                session=session, with_state=with_state, rollout=rollout
            ):
                click.echo(chunk, nl=False)
    finally:
        await db.close()


@customers.command("export")
@click.option(
    "--with-state",
    is_flag=True,
    help="Add the columns state, granted_scopes, missing_scopes, state_since, last_checked_at "
    "(and rollout_missing_scopes while a rollout runs).",
)
@click.pass_context
@config_errors_exit_2
def customers_export(ctx: click.Context, with_state: bool) -> None:
    """Write every customer as CSV to standard output (formula-like cells neutralised)."""
    settings = settings_from(ctx)
    migrated_database(settings)
    asyncio.run(_export(settings, with_state))
