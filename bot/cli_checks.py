"""``brincr-bot check`` and ``brincr-bot simulate``: the CLI side of the health core."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click
from sqlalchemy import select

from bot.checks import CheckService, app_wide_problems
from bot.cli import config_errors_exit_2, main, settings_from
from bot.domain import normalize_kvk
from bot.errors import ConfigError
from bot.health import CheckOutcome
from bot.settings import Settings
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Customer


def _row(customer: Customer, outcome: CheckOutcome | None) -> dict[str, Any]:
    return {
        "kvk": customer.kvk,
        "name": customer.name,
        "environment": customer.environment,
        "tenant_id": customer.tenant_id,
        "state": customer.state,
        "granted_scopes": customer.granted_scopes.split(),
        "missing_scopes": customer.missing_scopes.split(),
        "probe_status": outcome.probe_status if outcome else None,
        "error": (outcome.error_text or outcome.error_code) if outcome else None,
    }


async def _select(db: Database, kvks: list[str]) -> list[Customer]:
    async with db.transaction() as session:
        query = select(Customer).order_by(Customer.kvk)
        if kvks:
            query = query.where(Customer.kvk.in_(kvks))
        customers = list((await session.scalars(query)).all())
    unknown = sorted(set(kvks) - {c.kvk for c in customers})
    if unknown:
        raise ConfigError([f"no customer with KvK {kvk}" for kvk in unknown])
    return customers


async def _run(settings: Settings, kvks: list[str]) -> list[tuple[Customer, CheckOutcome | None]]:
    db = Database(settings.database_url)
    checker = CheckService(settings, db)
    try:
        customers = await _select(db, kvks)
        linked = [c.id for c in customers if c.tenant_id]
        outcomes = {o.customer_id: o for o in await checker.check_many(linked)}
        refreshed = {c.id: c for c in await _select(db, [c.kvk for c in customers])}
    finally:
        await checker.aclose()
        await db.close()
    return [(refreshed[c.id], outcomes.get(c.id)) for c in customers]


def _print_table(rows: list[dict[str, Any]]) -> None:
    click.echo(f"{'KVK':<9} {'STATE':<15} {'ENV':<11} {'PROBE':<6} NAME / DETAIL")
    for row in rows:
        detail = row["name"]
        if row["missing_scopes"]:
            detail += " — missing " + " ".join(row["missing_scopes"])
        elif row["error"]:
            detail += f" — {row['error']}"
        elif row["tenant_id"] is None:
            detail += " — no tenant linked yet, not checked"
        probe = row["probe_status"] or "-"
        click.echo(
            f"{row['kvk']:<9} {row['state']:<15} {row['environment']:<11} {probe!s:<6} {detail}"
        )


@main.command("check")
@click.argument("kvks", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per customer per line.")
@click.pass_context
@config_errors_exit_2
def check(ctx: click.Context, kvks: tuple[str, ...], as_json: bool) -> None:
    """Check customers now (all when no KvK is given) and store the results.

    Exit 0 when every checked customer is healthy, 1 when any is not, 2 on a configuration
    error or a KvK that is malformed or unknown.
    """
    settings = settings_from(ctx)
    problems = settings.problems_for_checks()
    bad = [k for k in kvks if normalize_kvk(k) is None]
    problems += [f"`{k[:40]}` is not a KvK number (8 digits)" for k in bad]
    if problems:
        raise ConfigError(problems)
    upgrade(settings.database_url)
    results = asyncio.run(_run(settings, [normalize_kvk(k) or k for k in kvks]))
    rows = [_row(customer, outcome) for customer, outcome in results]
    for line in app_wide_problems([o for _, o in results if o]):
        click.echo(f"app-wide problem: {line}", err=True)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
    else:
        _print_table(rows)
    checked = [row for row in rows if row["tenant_id"]]
    sys.exit(0 if all(row["state"] == "healthy" for row in checked) else 1)


@main.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8400, show_default=True, type=click.IntRange(0, 65535))
@click.option("--latency", default=0.0, show_default=True, help="Added latency in seconds.")
def simulate(host: str, port: int, latency: float) -> None:
    """Run a local stand-in for Visma Connect and the Brincr API (both environments).

    Prints the settings that point the bot at it; control it at /_control (see
    bot/simulator/control.py). Stop with Ctrl-C.
    """
    from bot.simulator import Simulator, serve_forever

    def announce(sim: Simulator) -> None:
        click.echo(f"# Visma/Brincr stand-in listening on {sim.url}")
        for name, value in sim.settings_env().items():
            click.echo(f"export {name}={value}")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(host, port, latency, on_start=announce))


@main.group()
def customers() -> None:
    """Bulk load or dump customers (CSV: kvk,name,environment,tenant_id,account_manager)."""


async def _import(settings: Settings, text: str) -> Any:
    from bot.customers_csv import import_customers, parse_csv

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
    from bot.customers_csv import ImportRejected

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
    from bot.customers_csv import export_customers

    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            async for chunk in export_customers(session=session, with_state=with_state):
                click.echo(chunk, nl=False)
    finally:
        await db.close()


@customers.command("export")
@click.option(
    "--with-state",
    is_flag=True,
    help="Add state,granted_scopes,missing_scopes,state_since,last_checked_at.",
)
@click.pass_context
@config_errors_exit_2
def customers_export(ctx: click.Context, with_state: bool) -> None:
    """Write every customer as CSV to standard output (formula-like cells neutralised)."""
    settings = settings_from(ctx)
    upgrade(settings.database_url)
    asyncio.run(_export(settings, with_state))
