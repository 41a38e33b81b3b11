"""The context every feature service is built with: the settings, the database, and a way to
tell the outbox sender that rows are waiting (outbound messages are rows first).

The composition root (:mod:`bot.composition`) builds one per process. ``wake_outbox`` is the
sender's ``wake`` in ``serve`` and the demo; in commands that deliver nothing themselves
(``brincr-bot check``) it does nothing, and the rows wait for a serving replica's sender.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.settings import Settings
from storage.db import Database


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    wake_outbox: Callable[[], None] = _nothing
