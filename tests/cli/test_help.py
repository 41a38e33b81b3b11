"""``brincr-bot --help`` lists the commands without importing them (it took 1.5 s)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import click

from bot.cli import COMMANDS, SUMMARIES, main

HEAVY = ("sqlalchemy", "aiohttp", "slack_bolt", "httpx", "pydantic_settings", "bot.cli.serve")


def test_help_lists_every_command_from_the_summaries_importing_none() -> None:
    code = (
        "import sys, json; from bot.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    *usage, imported = done.stdout.strip().splitlines()
    assert json.loads(imported) == []
    listing = "\n".join(usage)
    for name, summary in SUMMARIES.items():
        assert f"  {name} " in listing and summary in " ".join(listing.split())
    assert took < 5  # 0.2 s on an idle machine; the imports above are what keeps it there


def test_the_summaries_name_exactly_the_commands_and_match_their_own_help() -> None:
    assert set(SUMMARIES) == set(COMMANDS)
    ctx = click.Context(main)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert command is not None and command.help, name
        assert len(SUMMARIES[name]) <= 66, name  # one line in an 80-column terminal
        if isinstance(command, click.Group):  # a group's summary names its subcommands
            for sub in command.list_commands(ctx):
                assert sub in SUMMARIES[name], (name, sub)


def test_option_help_breaks_no_word() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["customers", "export", "--help"], terminal_width=80)
    assert "last_checked_at" in result.output and "last_check\n" not in result.output
