"""What every ``brincr-bot`` subcommand shares: settings loaded once per run, and
configuration errors as one line per problem on stderr with exit code 2 (never a traceback)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

from bot.core.errors import ConfigError
from bot.settings import Settings, load_settings
from storage.db import one_line, require_existing, safe_url

F = TypeVar("F", bound=Callable[..., Any])
EXIT_CONFIG = 2


def fail_config(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"configuration error: {problem}", err=True)
    sys.exit(EXIT_CONFIG)


def config_errors_exit_2(func: F) -> F:
    """Decorator: a ConfigError raised inside a command, a database that cannot be reached
    or used, or a connection problem prints one line per problem and exits 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as error:
            fail_config(error.problems)
        except (DBAPIError, SQLAlchemyTimeoutError) as error:
            fail_config([f"DATABASE_URL: {_where()} cannot be used: {one_line(error)}"])
        except OSError as error:  # a port in use, a connection refused, a timeout
            fail_config([one_line(error)])

    return wrapper  # type: ignore[return-value]


def _where() -> str:
    """The configured database, its password hidden, for an error line."""
    context = click.get_current_context(silent=True)
    settings = (context.obj or {}).get("settings") if context else None
    return f"the database at {safe_url(settings.database_url)}" if settings else "the database"


def existing_database(settings: Settings) -> str:
    """``DATABASE_URL`` for a command that only reads: ConfigError when it names an SQLite
    file that does not exist (a typo must not create an empty database and exit 0)."""
    try:
        require_existing(settings.database_url)
    except ValueError as error:
        raise ConfigError([f"DATABASE_URL: {error}"]) from None
    return settings.database_url


def migrated_database(settings: Settings) -> str:
    """``DATABASE_URL`` for a command that reads customers: it must exist and have a schema
    (pending migrations are applied). A never-migrated database is a ConfigError and stays
    untouched: a reading command must not create 14 empty tables and report "no customers"."""
    from storage.migrate import SchemaMissing, upgrade_existing

    url = existing_database(settings)
    try:
        upgrade_existing(url)
    except SchemaMissing:
        raise ConfigError(
            [
                f"DATABASE_URL: the database at {safe_url(url)} has no brincr-bot schema yet: "
                "run `brincr-bot db upgrade` (or `serve`, which migrates at start)"
            ]
        ) from None
    return url


def settings_from(ctx: click.Context) -> Settings:
    """The settings for this run, loaded once (ConfigError when wrong)."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings()
    settings: Settings = obj["settings"]
    return settings
