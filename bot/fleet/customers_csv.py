"""Bulk customers: CSV import (all rows valid, or nothing stored) and export.

Columns: ``kvk,name,environment,tenant_id,account_manager``; ``export --with-state`` adds
``state,granted_scopes,missing_scopes,state_since,last_checked_at`` (ignored on import, so an
export can be edited and imported again). Re-importing the same file changes nothing; a row
whose KvK exists updates that customer only where a value differs.

Files separated by ``;`` (what Excel writes in Dutch locales) are recognised by sniffing the
header. Exported cells that a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, tab or carriage return) get a leading ``'``, as OWASP recommends
(https://owasp.org/www-community/attacks/CSV_Injection); an import strips that ``'`` again.
So does every piece of a cell after a ``;`` or ``,`` (and spaces): Excel with ``;`` as list
separator (Dutch locales) splits a cell there, and the piece would run as a formula of its
own. (A name that really holds ``;'=`` loses that ``'`` on a round trip.)
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.errors import UserError
from bot.domain import Environment, normalize_kvk, normalize_tenant_id
from storage.customers import (
    ExportRow,
    NewCustomer,
    StoredCustomer,
    export_rows,
    insert_many,
    stored_for_import,
    update_many,
)
from storage.models import Customer

COLUMNS = ("kvk", "name", "environment", "tenant_id", "account_manager")
STATE_COLUMNS = ("state", "granted_scopes", "missing_scopes", "state_since", "last_checked_at")
ROLLOUT_COLUMN = "rollout_missing_scopes"  # with --with-state while a rollout runs
LIMITS = {c: Customer.__table__.c[c].type.length for c in COLUMNS}  # type: ignore[attr-defined]
MAX_NAME = LIMITS["name"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_ENVIRONMENTS = {env.value: env for env in Environment}


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


@dataclass
class ParsedFile:
    """Valid rows with the line each came from, the bad ones' problems by line, and columns
    the import does not use."""

    rows: list[NewCustomer] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # kvk -> line
    extra_columns: list[str] = field(default_factory=list)


_PIECE_FORMULA = re.compile(r"([;,]\s*)(?=[=+\-@\t\r])")
_PIECE_NEUTRALISED = re.compile(r"([;,]\s*)'(?=[=+\-@\t\r])")


def neutralise(cell: str) -> str:
    """The cell as a spreadsheet shows it as text, never runs it (or a piece of it, split at
    a list separator) as a formula."""
    cell = _PIECE_FORMULA.sub(r"\1'", cell)
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _unneutralise(cell: str) -> str:
    cell = _PIECE_NEUTRALISED.sub(r"\1", cell)
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(header, delimiters=",;").delimiter
    except csv.Error:
        return ","


def _too_long(column: str, value: str) -> str | None:
    limit = LIMITS[column]
    return f"{column} has {len(value)} characters; at most {limit}" if len(value) > limit else None


@dataclass(frozen=True)
class _Values:
    """One row's cells (stripped, un-neutralised) and the normal forms of its identifiers."""

    cells: dict[str, str]
    kvk: str | None
    tenant_id: str | None

    @classmethod
    def of(cls, row: dict[str, str | None]) -> _Values:
        cells = {c: _unneutralise((row.get(c) or "").strip()) for c in COLUMNS}
        tenant = cells["tenant_id"]
        return cls(
            cells, normalize_kvk(cells["kvk"]), normalize_tenant_id(tenant[:64]) if tenant else None
        )


def _row_problems(values: _Values) -> list[str]:
    row = values.cells
    problems = [p for c in ("name", "account_manager") if (p := _too_long(c, row[c]))]
    if values.kvk is None:
        problems.append(f"kvk `{row['kvk'][:40]}` is not 8 digits")
    name = row["name"]
    if not name or any(ord(c) < 32 for c in name):
        problems.append(f"name must be 1-{MAX_NAME} printable characters")
    if row["environment"].lower() not in _ENVIRONMENTS:
        problems.append(f"environment `{row['environment'][:40]}` is not production or sandbox")
    if row["tenant_id"] and values.tenant_id is None:
        problems.append(f"tenant_id `{row['tenant_id'][:40]}` is not a UUID")
    manager = row["account_manager"]
    if manager and len(manager) <= LIMITS["account_manager"] and not SLACK_USER_RE.match(manager):
        problems.append(f"account_manager `{manager[:40]}` is not a Slack user ID (U…)")
    return problems


def _duplicates(values: _Values, line: int, seen: dict[str, dict[str, int]]) -> list[str]:
    problems = []
    for column, value in (("kvk", values.kvk), ("tenant_id", values.tenant_id)):
        if value is None:
            continue
        if value in seen[column]:
            problems.append(f"duplicate {column} {value} (first on line {seen[column][value]})")
        seen[column].setdefault(value, line)
    return problems


def parse_csv(text: str) -> ParsedFile:
    """Every row validated; problems are kept by line for :func:`import_customers` to report
    together with those only the database can tell. A missing column raises ImportRejected."""
    reader = csv.DictReader(io.StringIO(text), delimiter=_delimiter(text))
    header = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportRejected([f"line 1: missing column(s): {', '.join(missing)}"])
    known = (*COLUMNS, *STATE_COLUMNS, ROLLOUT_COLUMN)
    parsed = ParsedFile(extra_columns=[c for c in header if c not in known])
    seen: dict[str, dict[str, int]] = {"kvk": {}, "tenant_id": {}}
    for row in reader:
        line = reader.line_num
        values = _Values.of(row)
        found = _row_problems(values) + _duplicates(values, line, seen)
        parsed.problems += [(line, p) for p in found]
        if not found and values.kvk:
            parsed.rows.append(_new_customer(values))
            parsed.lines[values.kvk] = line
    return parsed


def _new_customer(values: _Values) -> NewCustomer:
    return NewCustomer(
        values.kvk or "",
        values.cells["name"],
        _ENVIRONMENTS[values.cells["environment"].lower()],
        values.tenant_id,
        values.cells["account_manager"] or None,
    )


def _differs(old: StoredCustomer, new: NewCustomer) -> bool:
    return (old.name, old.environment, old.tenant_id, old.account_manager) != (
        new.name,
        new.environment.value,
        new.tenant_id,
        new.account_manager,
    )


def _tenants_in_use(parsed: ParsedFile, stored: dict[str, StoredCustomer]) -> list[tuple[int, str]]:
    owners = {c.tenant_id: c.kvk for c in stored.values() if c.tenant_id}
    problems = []
    for new in parsed.rows:
        owner = owners.get(new.tenant_id) if new.tenant_id else None
        if owner is not None and owner != new.kvk:
            problem = f"tenant_id {new.tenant_id} is already used by customer {owner}"
            problems.append((parsed.lines[new.kvk], problem))
    return problems


async def import_customers(
    parsed: ParsedFile,
    *,
    session: AsyncSession,
    progress: Callable[[int], None] = lambda _n: None,
) -> ImportReport:
    """Store a parsed file in the caller's transaction: one SELECT, then bulk statements.

    Raises ImportRejected (nothing written) listing, by line, the file's problems and the
    tenant IDs that already belong to another customer. ``progress`` is called with the number
    of rows done after each chunk.
    """
    stored = await stored_for_import(session=session)
    problems = sorted(parsed.problems + _tenants_in_use(parsed, stored))
    if problems:
        raise ImportRejected([f"line {line}: {problem}" for line, problem in problems])
    news = [new for new in parsed.rows if new.kvk not in stored]
    changes = [(stored[n.kvk], n) for n in parsed.rows if n.kvk in stored]
    changed = [(old, new) for old, new in changes if _differs(old, new)]
    progress(len(changes) - len(changed))
    await insert_many(news, session=session, progress=progress)
    await update_many(changed, session=session, progress=progress)
    return ImportReport(len(news), len(changed), len(changes) - len(changed))


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def _cells(row: ExportRow, with_state: bool, rollout: bool) -> list[str]:
    cells = [row.kvk, row.name, row.environment, row.tenant_id or "", row.account_manager or ""]
    if with_state:
        cells += [row.state, row.granted_scopes, row.missing_scopes, _when(row.state_since),
                  _when(row.last_check_at)]  # fmt: skip
        if rollout:
            cells.append(row.rollout_missing_scopes)
    return [neutralise(cell) for cell in cells]


async def export_customers(
    *, session: AsyncSession, with_state: bool = False, rollout: bool = False
) -> AsyncIterator[str]:
    """The CSV, a chunk of lines at a time (header first), every cell neutralised. With
    ``with_state`` and ``rollout`` (a rollout runs) the state columns end with
    ``rollout_missing_scopes``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = COLUMNS + STATE_COLUMNS if with_state else COLUMNS
    writer.writerow((*header, ROLLOUT_COLUMN) if with_state and rollout else header)
    async for rows in export_rows(session=session):
        writer.writerows(_cells(row, with_state, rollout) for row in rows)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()
