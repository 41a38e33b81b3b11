"""The ``brincr-bot`` command line: one click group, every subcommand added explicitly.

Output here is the CLI's own: ``click.echo`` is fine. Every subcommand builds the settings
once and turns a configuration problem into one line per problem and exit code 2
(:mod:`bot.cli.common`).
"""

from __future__ import annotations

import click

from bot.cli.checks import check, simulate
from bot.cli.customers import customers
from bot.cli.database import db
from bot.cli.manifest import manifest
from bot.cli.serve import serve
from bot.demo.cli import demo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brincr-bot")
def main() -> None:
    """brincr-bot: watch the Visma Connect / Brincr API connection of every customer."""


for command in (serve, check, db, customers, simulate, demo, manifest):
    main.add_command(command)
