"""``/brincr history``: one customer's timeline, a page at a time (renderer:
bot/fleet/render_history.py). Reads stored rows only; never checks."""

from __future__ import annotations

from dataclasses import dataclass

from storage.customers import find_customer
from storage.db import Database
from storage.models import Customer
from storage.timeline import Entry, customer_timeline

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


async def history_page(db: Database, query: str, offset: int = 0) -> HistoryPage:
    """The page at ``offset`` of the timeline of the customer ``query`` names (UserError
    when none or several match)."""
    async with db.transaction() as session:
        customer = await find_customer(query, session=session)
        entries = await customer_timeline(customer, session=session)
    start = min(max(0, offset), max(0, len(entries) - 1))
    return HistoryPage(customer, entries[start : start + PAGE_SIZE], start, len(entries))
