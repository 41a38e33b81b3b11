"""What every ``brincr-bot`` subcommand shares: settings loaded once per run, and
configuration errors as one line per problem on stderr with exit code 2 (never a traceback)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from bot.core.errors import ConfigError
from bot.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
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


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop where it is installed (Linux, macOS): the same asyncio API with
    a faster loop, worth ~15 % of a sweep's time (docs/benchmarks.md); else on asyncio's.
    ``serve`` and ``check`` both run on it, so a check is as fast whoever starts it."""
    try:
        import uvloop
    except ImportError:  # Windows: uvloop does not exist there
        return asyncio.run(main)
    return uvloop.run(main)
