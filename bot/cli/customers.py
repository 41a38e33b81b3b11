"""``brincr-bot customers import FILE.csv`` and ``customers export``."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from bot.cli.common import config_errors_exit_2, existing_database, settings_from
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade


@click.group()
def customers() -> None:
    """Bulk load or dump customers (CSV: kvk,name,environment,tenant_id,account_manager)."""


async def _import(settings: Settings, text: str) -> Any:
    from bot.fleet.customers_csv import import_customers, parse_csv

    rows = parse_csv(text)  # every row validated before anything is stored
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            return await import_customers(rows, session=session)
    finally:
        await db.close()


@customers.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.pass_context
@config_errors_exit_2
def customers_import(ctx: click.Context, file: Any) -> None:
    """Import customers from FILE.csv: all rows valid, or nothing is stored (exit 1)."""
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


async def _export(settings: Settings) -> str:
    from bot.fleet.customers_csv import export_customers

    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            return await export_customers(session=session)
    finally:
        await db.close()


@customers.command("export")
@click.pass_context
@config_errors_exit_2
def customers_export(ctx: click.Context) -> None:
    """Write every customer as CSV to standard output."""
    settings = settings_from(ctx)
    upgrade(existing_database(settings))
    click.echo(asyncio.run(_export(settings)), nl=False)
