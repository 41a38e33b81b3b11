"""The ``brincr-bot`` command line: one click group, every subcommand named here explicitly.

Subcommands are imported when they run (click's documented lazy-loading pattern), so
``brincr-bot check`` does not pay for importing the Slack app, the demo or the stand-in.
Output here is the CLI's own: ``click.echo`` is fine. Every subcommand builds the settings
once and turns a configuration problem into one line per problem and exit code 2
(:mod:`bot.cli.common`).
"""

from __future__ import annotations

import atexit
import gc
import importlib

import click

# name → "module:attribute" of the click command
COMMANDS = {
    "serve": "bot.cli.serve:serve",
    "check": "bot.cli.checks:check",
    "db": "bot.cli.database:db",
    "customers": "bot.cli.customers:customers",
    "simulate": "bot.cli.checks:simulate",
    "demo": "bot.demo.cli:demo",
    "manifest": "bot.cli.manifest:manifest",
}


# name → the line `brincr-bot --help` shows: listing the commands must not import them (that
# took 1.5 s: the Slack app, the demo, SQLAlchemy); tests/cli/test_help.py keeps both tables
# in step with the commands' own help.
SUMMARIES = {
    "serve": "Run the bot: Slack, scheduled checks, webhooks, health endpoints.",
    "check": "Check customers now (all when none is named); store the results.",
    "db": "Database schema: upgrade, current, downgrade.",
    "customers": "Bulk load or dump customers as CSV (import, export).",
    "simulate": "Run a local stand-in for Visma Connect and the Brincr API.",
    "demo": "The whole bot offline, the terminal standing in for Slack.",
    "manifest": "Print the Slack app manifest (manifest.yml) for a deployment.",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click docs, "Lazily Loading
    Subcommands"); the listing in ``--help`` comes from SUMMARIES, importing none of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUMMARIES[name]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brincr-bot")
def main() -> None:
    """brincr-bot: watch the Visma Connect / Brincr API connection of every customer."""
    # At exit, move every object to the permanent generation: the interpreter's last
    # collection then skips them (a `check` of 1,000 customers exits ~0.2 s sooner).
    atexit.register(gc.freeze)
