"""``brincr-bot check`` and ``brincr-bot simulate``: the CLI side of the health core."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
from typing import Any

import click

from bot.checks.service import app_wide_problems
from bot.cli.common import (
    config_errors_exit_2,
    migrated_database,
    settings_from,
)
from bot.composition import build_bot
from bot.core.errors import ConfigError
from bot.core.loop import run_event_loop
from bot.domain import normalize_kvk
from bot.domain.outcomes import CheckOutcome
from bot.settings import Settings
from storage.customers import by_kvk
from storage.db import Database
from storage.facts import CustomerFacts, facts_of


def _row(facts: CustomerFacts, outcome: CheckOutcome | None) -> dict[str, Any]:
    customer = facts.customer
    return {
        "kvk": customer.kvk,
        "name": customer.name,
        "environment": customer.environment,
        "tenant_id": customer.tenant_id,
        "state": customer.state,
        "granted_scopes": facts.granted_scopes,
        "missing_scopes": facts.missing_scopes,
        "rollout_missing_scopes": facts.rollout_missing_scopes,
        "probe_status": outcome.probe_status if outcome else None,
        "error": (outcome.error_text or outcome.error_code) if outcome else None,
    }


async def _select(db: Database, kvks: list[str]) -> list[CustomerFacts]:
    async with db.transaction() as session:
        customers = await by_kvk(kvks, session=session)
        unknown = sorted(set(kvks) - {c.kvk for c in customers})
        if unknown:  # a usage mistake, not a configuration problem (exit 2 all the same)
            raise click.UsageError("; ".join(f"no customer with KvK {kvk}" for kvk in unknown))
        return await facts_of(customers, session=session)


async def _run(
    settings: Settings, kvks: list[str]
) -> list[tuple[CustomerFacts, CheckOutcome | None]]:
    """Check through the bot that ``serve`` runs (bot.composition): each check is recorded
    with the alerting and onboarding listeners, so an incident opens or closes, or an
    invitation is approved, exactly as after a scheduled check. The alerts this writes wait in
    the outbox for a serving replica to post them."""
    bot = build_bot(settings)
    gc.freeze()  # what is built so far lives to the end: the collector need not scan it
    try:
        customers = [f.customer for f in await _select(bot.db, kvks)]
        linked = [c.id for c in customers if c.tenant_id]
        outcomes = {o.customer_id: o for o in await bot.checker.check_many(linked)}
        refreshed = {f.customer.id: f for f in await _select(bot.db, [c.kvk for c in customers])}
    finally:
        await bot.aclose()
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


@click.command("check")
@click.argument("kvks", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per customer per line.")
@click.pass_context
@config_errors_exit_2
def check(ctx: click.Context, kvks: tuple[str, ...], as_json: bool) -> None:
    """Check customers now (all when no KvK is given) and store the results.

    Exit 0 when every checked customer is healthy, 1 when any is not, 2 on a configuration
    error or a KvK that is malformed or unknown.
    """
    bad = [k for k in kvks if normalize_kvk(k) is None]
    if bad:
        raise click.UsageError(
            "; ".join(f"`{k[:40]}` is not a KvK number (8 digits, e.g. 12345678)" for k in bad)
        )
    settings = settings_from(ctx)
    problems = settings.problems_for_checks()
    if problems:
        raise ConfigError(problems)
    migrated_database(settings)
    results = run_event_loop(_run(settings, [normalize_kvk(k) or k for k in kvks]))
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


@click.command("simulate")
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
