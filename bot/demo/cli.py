"""``brincr-bot demo``: the whole bot offline, the terminal standing in for Slack.

Lines typed at the terminal are read by a daemon thread and handed to the event loop. At a
terminal the thread reads with ``input()`` and GNU readline (a prompt, line editing, ↑/↓
history), one line after the previous one was answered; otherwise (a pipe, a script) with
``os.read`` (not ``sys.stdin``, whose buffer lock a thread blocked in a read would hold at
interpreter exit). EOF (Ctrl-D), ``quit``, Ctrl-C or SIGTERM stop everything cleanly: exit 0,
the terminal's settings restored.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Iterator

import click

from bot.demo.printer import Printer
from bot.demo.tour import Tour
from bot.demo.user import RequestRefused
from bot.demo.world import (
    ALERTS,
    CHANNELS,
    DEMO_USER,
    HEALTHY,
    INVITED,
    MISSING,
    REVOKED,
    SEEDS,
    SUPPORT,
    Demo,
)

PREFIX = "/brincr"
QUIT_WORDS = ("quit", "exit")
PROMPT = "slack> "


def banner(demo: Demo) -> str:
    names = ", ".join(seed.name for seed in SEEDS)
    return "\n".join(
        [
            "brincr-bot demo: the whole bot offline, this terminal standing in for Slack.",
            f"  Visma Connect and the Brincr API: the built-in stand-in at {demo.sim.url}",
            "  Database: SQLite in a temporary directory, deleted when you quit",
            f"  Slack: you are <@{DEMO_USER}> (a bot admin) in {CHANNELS[SUPPORT]}; "
            f"alerts go to {CHANNELS[ALERTS]}",
            f"  Customers: {names}; {INVITED.name} is invited, not yet approved.",
            f"  {MISSING.name} did not grant every scope; soon {REVOKED.name} switches one off.",
            "",
            f"Type a command, e.g.  /brincr status {HEALTHY.kvk}   (the /brincr is optional)",
            "  Enter on an empty line: the next step of a guided tour",
            "  click <n>: press the button numbered n",
            "  Ctrl-D, Ctrl-C or quit: stop",
        ]
    )


def _read_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """The stdin reader thread: one queue item per line, then None at end of input."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        try:
            chunk = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            chunk = b""
        pending += decoder.decode(chunk, final=not chunk)
        *lines, pending = pending.split("\n")
        items: list[str | None] = [*lines, *([pending] if not chunk and pending else [])]
        if not chunk:
            items.append(None)
        for item in items:
            with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting
                loop.call_soon_threadsafe(queue.put_nowait, item)
        if not chunk:
            return


def _read_terminal(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None], ready: threading.Event
) -> None:
    """The terminal reader thread: readline's prompt for each line once the previous line has
    been answered (``ready``), so the prompt comes back under the bot's reply; None at EOF."""
    import readline  # noqa: F401 - importing it is what gives input() editing and history

    while True:
        ready.wait()
        ready.clear()
        try:
            line: str | None = input(PROMPT)
        except (EOFError, OSError):
            line = None
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting
            loop.call_soon_threadsafe(queue.put_nowait, line)
        if line is None:
            return


async def handle_line(demo: Demo, tour: Tour, line: str) -> None:
    words = line.split()
    if not words:
        await tour.next_step()
    elif words[0] == "click" and len(words) == 2 and words[1].isdigit():
        button = demo.printer.buttons.get(int(words[1]))
        if button is None:
            demo.printer.line(f"There is no button {words[1]}: the numbers are in the messages.")
            return
        await demo.click(button)
    elif words[0].startswith("/") and words[0] != PREFIX:
        demo.printer.line(f"Only {PREFIX} exists here, e.g. {PREFIX} help")
    else:
        await demo.command(line.removeprefix(PREFIX).strip())


async def interact(demo: Demo, tour: Tour) -> None:
    """Lines from the terminal until EOF or ``quit``."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    ready = threading.Event()
    ready.set()
    if sys.stdin.isatty() and sys.stdout.isatty():
        reader = threading.Thread(target=_read_terminal, args=(loop, queue, ready), daemon=True)
    else:
        reader = threading.Thread(target=_read_lines, args=(loop, queue), daemon=True)
    reader.start()
    while (line := await queue.get()) is not None and line.strip() not in QUIT_WORDS:
        try:
            await handle_line(demo, tour, line.strip())
        except TimeoutError:
            demo.printer.line("(no answer from the bot within a few seconds)")
        except RequestRefused as error:
            demo.printer.line(f"(the bot refused the request: {error})")
        finally:
            ready.set()


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    """Run ``work`` until it ends or ``stop`` is set (a signal); cancel the other."""
    tasks = {asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()


async def run_demo(*, tour_only: bool) -> None:
    printer = Printer(CHANNELS)
    demo = Demo(printer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await demo.start()
        printer.line(banner(demo))
        await demo.seed()
        await demo.settle()
        if not tour_only:  # the start-up messages pushed the welcome up: the essentials again
            printer.line()
            printer.line(
                f"Ready. Try  /brincr status {HEALTHY.kvk}  ·  /brincr help  ·  Enter: guided "
                "tour  ·  quit"
            )
        tour = Tour(demo)
        await _until_stopped(tour.run_all() if tour_only else interact(demo, tour), stop)
    finally:
        printer.line()
        printer.line("Stopping the demo…")
        await demo.stop()


@click.command()
@click.option("--tour", "tour_only", is_flag=True, help="Run the scripted tour and exit.")
def demo(tour_only: bool) -> None:
    """The whole bot offline: the Visma/Brincr stand-in, SQLite in a temporary file, and this
    terminal standing in for Slack. Type `/brincr status 12345678`, or press Enter for a
    guided tour. Needs no configuration; your .env is not read."""
    from bot.core.logs import configure_logging

    configure_logging("text", level=logging.WARNING)
    with contextlib.suppress(AttributeError):
        sys.stdout.reconfigure(errors="replace")  # type: ignore[union-attr]
    with _terminal_restored(), contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(tour_only=tour_only))


@contextlib.contextmanager
def _terminal_restored() -> Iterator[None]:
    """Readline changes the terminal's modes while it waits for a line; a stop meanwhile
    (Ctrl-C, SIGTERM) must not leave the shell without echo."""
    try:
        import termios

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    except (ImportError, OSError, ValueError):  # Windows, or no real stdin
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            with contextlib.suppress(OSError):
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
