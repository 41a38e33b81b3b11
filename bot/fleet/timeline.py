"""``/brincr history``: one page of a customer's timeline, as
:meth:`bot.fleet.service.Fleet.history` returns it (renderer: bot/fleet/render_history.py).
Read from stored rows only; never checks."""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import Customer
from storage.timeline import Entry

PAGE_SIZE = 20


@dataclass(frozen=True)
class HistoryPage:
    customer: Customer
    entries: list[Entry]  # this page, newest first
    offset: int
    total: int

    @property
    def older(self) -> int | None:
        """The offset of the next (older) page, or None on the last."""
        end = self.offset + len(self.entries)
        return end if end < self.total else None

    @property
    def newer(self) -> int | None:
        return max(0, self.offset - PAGE_SIZE) if self.offset > 0 else None
