"""The ``brincr-bot`` command line. Output here is the CLI's own: print/click.echo are fine.

Every subcommand builds the settings once, turns ConfigError into one line per problem on
stderr and exit code 2 (never a traceback).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from bot.errors import ConfigError
from bot.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])
EXIT_CONFIG = 2


def fail_config(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"configuration error: {problem}", err=True)
    sys.exit(EXIT_CONFIG)


def config_errors_exit_2(func: F) -> F:
    """Decorator: a ConfigError raised inside a command prints its lines and exits 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as error:
            fail_config(error.problems)

    return wrapper  # type: ignore[return-value]


def settings_from(ctx: click.Context) -> Settings:
    """The settings for this run, loaded once (ConfigError when wrong)."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings()
    settings: Settings = obj["settings"]
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brincr-bot")
def main() -> None:
    """brincr-bot: watch the Visma Connect / Brincr API connection of every customer."""


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.pass_context
@config_errors_exit_2
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending database migrations (Alembic)."""
    from bot.logs import configure_logging
    from storage.migrate import upgrade

    settings = settings_from(ctx)
    configure_logging(settings.log_format, settings.log_level)
    upgrade(settings.database_url)
    click.echo("database is up to date")


# Subcommands defined in their own modules register themselves on `main` when imported.
from bot import cli_checks, cli_manifest, cli_serve  # noqa: E402, F401
from bot.demo import cli as demo_cli  # noqa: E402, F401
