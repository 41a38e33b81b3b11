"""Bulk customers: CSV import (all rows valid, or nothing stored) and export.

Columns: ``kvk,name,environment,tenant_id,account_manager``. Re-importing the same file
changes nothing; a row whose KvK exists updates that customer only where a value differs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import UserError
from bot.domain import State, normalize_kvk, normalize_tenant_id, parse_environment
from storage.customers import NewCustomer, add_customer, get_by_kvk
from storage.models import Customer

COLUMNS = ("kvk", "name", "environment", "tenant_id", "account_manager")
MAX_NAME = 200


class ImportRejected(UserError):
    """The file has bad rows; ``problems`` lists each with its line number. Nothing stored."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s); nothing was imported")
        self.problems = problems


@dataclass(frozen=True)
class ImportReport:
    added: int
    updated: int
    unchanged: int


def _row_problems(row: dict[str, str]) -> list[str]:
    problems = []
    if normalize_kvk(row["kvk"]) is None:
        problems.append(f"kvk `{row['kvk'][:40]}` is not 8 digits")
    name = row["name"].strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        problems.append(f"name must be 1-{MAX_NAME} printable characters")
    try:
        parse_environment(row["environment"])
    except UserError:
        problems.append(f"environment `{row['environment'][:40]}` is not production or sandbox")
    if row["tenant_id"].strip() and normalize_tenant_id(row["tenant_id"][:64]) is None:
        problems.append(f"tenant_id `{row['tenant_id'][:40]}` is not a UUID")
    return problems


def parse_csv(text: str) -> list[NewCustomer]:
    """Every row validated; ImportRejected lists all problems with their line numbers."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportRejected([f"line 1: missing column(s): {', '.join(missing)}"])
    problems: list[str] = []
    rows: list[NewCustomer] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        values = {c: (row.get(c) or "").strip() for c in COLUMNS}
        found = _row_problems(values)
        kvk = normalize_kvk(values["kvk"])
        if kvk and kvk in seen:
            found.append(f"duplicate kvk {kvk} (first on line {seen[kvk]})")
        if kvk:
            seen.setdefault(kvk, line)
        problems += [f"line {line}: {p}" for p in found]
        if not found and kvk:
            rows.append(
                NewCustomer(
                    kvk,
                    values["name"],
                    parse_environment(values["environment"]),
                    normalize_tenant_id(values["tenant_id"]) if values["tenant_id"] else None,
                    values["account_manager"] or None,
                )
            )
    if problems:
        raise ImportRejected(problems)
    return rows


def _update(customer: Customer, new: NewCustomer) -> bool:
    wanted = {
        "name": new.name,
        "environment": new.environment.value,
        "tenant_id": new.tenant_id,
        "account_manager": new.account_manager,
    }
    changed = {k: v for k, v in wanted.items() if getattr(customer, k) != v}
    for key, value in changed.items():
        setattr(customer, key, value)
    if "tenant_id" in changed and new.tenant_id and customer.state == State.INVITED:
        customer.state = State.PENDING.value
        customer.next_check_at = customer.created_at
    return bool(changed)


async def import_customers(rows: Iterable[NewCustomer], *, session: AsyncSession) -> ImportReport:
    added = updated = unchanged = 0
    for new in rows:
        existing = await get_by_kvk(new.kvk, session=session)
        if existing is None:
            state = State.PENDING if new.tenant_id else State.INVITED
            await add_customer(new, session=session, state=state)
            added += 1
        elif _update(existing, new):
            updated += 1
        else:
            unchanged += 1
    return ImportReport(added, updated, unchanged)


async def export_customers(*, session: AsyncSession) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in await session.scalars(select(Customer).order_by(Customer.kvk)):
        writer.writerow([c.kvk, c.name, c.environment, c.tenant_id or "", c.account_manager or ""])
    return out.getvalue()
