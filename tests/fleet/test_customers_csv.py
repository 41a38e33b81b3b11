"""CSV for operations: exports with state, formula-safe cells, sniffed `;` files, line-numbered
refusals and bulk imports. The CLI runs as a real process; the bulk statements also run
in-process on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
import pty
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.fleet.customers_csv import (
    ImportRejected,
    export_customers,
    import_customers,
    neutralise,
    parse_csv,
)
from storage.db import Database
from storage.models import Customer, StateChange

T1 = "11111111-1111-4111-8111-111111111111"
T2 = "22222222-2222-4222-8222-222222222222"
BIN = str(Path(sys.executable).with_name("brincr-bot"))
HEADER = "kvk,name,environment,tenant_id,account_manager\n"

Invoke = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Invoke:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'csv.db'}"}

    def invoke(*args: str, stderr: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BIN, *args], env=env, stdout=subprocess.PIPE, stderr=stderr,
                              text=True, cwd=tmp_path, timeout=60, check=False)  # fmt: skip

    return invoke


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return name


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_with_state_adds_the_state_columns(cli: Invoke, tmp_path: Path) -> None:
    _write(tmp_path, "in.csv", HEADER + f"12345678,De Vries,production,{T1},U0AM\n"
                                        "23456789,Jansen,sandbox,,\n")  # fmt: skip
    assert cli("customers", "import", "in.csv").returncode == 0
    with sqlite3.connect(tmp_path / "csv.db") as conn:
        conn.execute(
            "UPDATE customers SET state='scopes_missing', granted_scopes='brincr:category', "
            "missing_scopes='brincr:country', last_check_at='2026-11-28 10:15:00.000000' "
            "WHERE kvk='12345678'"
        )
        conn.execute(  # scope names come from upstream: a spreadsheet must not run them
            "UPDATE customers SET granted_scopes='=HYPERLINK(1)', missing_scopes='@SUM(1)' "
            "WHERE kvk='23456789'"
        )
    plain = cli("customers", "export").stdout
    assert plain.splitlines()[0] == HEADER.strip()
    result = cli("customers", "export", "--with-state")
    rows = _rows(result.stdout)
    assert list(rows[0]) == ["kvk", "name", "environment", "tenant_id", "account_manager",
                             "state", "granted_scopes", "missing_scopes", "state_since",
                             "last_checked_at"]  # fmt: skip
    first, second = rows
    assert (first["state"], first["granted_scopes"], first["missing_scopes"]) == (
        "scopes_missing", "brincr:category", "brincr:country")  # fmt: skip
    assert first["last_checked_at"] == "2026-11-28T10:15:00Z"
    assert first["state_since"].endswith("Z") and second["state"] == "invited"
    assert second["last_checked_at"] == ""
    assert (second["granted_scopes"], second["missing_scopes"]) == ("'=HYPERLINK(1)", "'@SUM(1)")


def test_formula_cells_are_neutralised_on_export_and_restored_on_import(
    cli: Invoke, tmp_path: Path
) -> None:
    names = ['=HYPERLINK("http://evil.example","klik")', "+31 20 123", "-minus", "@at",
             "'t Hoekje"]  # fmt: skip
    body = "".join(f'{12345670 + i},"{n.replace(chr(34), chr(34) * 2)}",production,,\n'
                   for i, n in enumerate(names))  # fmt: skip
    assert cli("customers", "import", _write(tmp_path, "f.csv", HEADER + body)).returncode == 0
    exported = cli("customers", "export").stdout
    cells = [row["name"] for row in _rows(exported)]
    assert cells == ["'" + n for n in names[:4]] + ["'t Hoekje"]
    again = cli("customers", "import", _write(tmp_path, "again.csv", exported))
    assert again.stdout.startswith("0 added, 0 updated, 5 unchanged"), again.stderr
    with sqlite3.connect(tmp_path / "csv.db") as conn:  # names typed elsewhere, not imported
        conn.execute("UPDATE customers SET name = char(9) || 'Tab' WHERE kvk = '12345670'")
    cells = [row["name"] for row in _rows(cli("customers", "export").stdout)]
    assert cells[0] == "'\tTab"
    assert neutralise("\rx") == "'\rx" and neutralise("Plain") == "Plain"


def test_no_piece_of_a_cell_after_a_list_separator_runs_as_a_formula(
    cli: Invoke, tmp_path: Path
) -> None:
    """Issue 19, finding 7: Excel with ``;`` as list separator splits a cell at ``;``."""
    names = ["Back`tick x;=1+1;", "Jansen, +31 20;@SUM(A1)", "A; -2+3", "Plain; text, ok"]
    body = "".join(f'{12345670 + i},"{n}",production,,\n' for i, n in enumerate(names))
    assert cli("customers", "import", _write(tmp_path, "f.csv", HEADER + body)).returncode == 0
    exported = cli("customers", "export").stdout
    cells = [row["name"] for row in _rows(exported)]
    assert cells == ["Back`tick x;'=1+1;", "Jansen, '+31 20;'@SUM(A1)", "A; '-2+3", names[3]]
    for cell in cells:  # every piece Excel could make of it is text
        for piece in re.split(r"[;,]", cell):
            assert not piece.strip(" ").startswith(("=", "+", "-", "@")), piece
    again = cli("customers", "import", _write(tmp_path, "again.csv", exported))
    assert again.stdout.startswith("0 added, 0 updated, 4 unchanged"), again.stderr
    assert neutralise("brincr:a;=2+2") == "brincr:a;'=2+2"


def test_a_semicolon_file_is_sniffed_and_extra_columns_are_reported(
    cli: Invoke, tmp_path: Path
) -> None:
    text = (
        "kvk;name;environment;tenant_id;account_manager;notes\n"
        f"12345678;Bouwbedrijf De Vries, Utrecht;production;{T1};U0AM;call first\n"
    )
    result = cli("customers", "import", _write(tmp_path, "nl.csv", text))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("1 added")
    assert "column(s) not imported: notes" in result.stderr
    assert _rows(cli("customers", "export").stdout)[0]["name"] == "Bouwbedrijf De Vries, Utrecht"


def test_an_export_with_state_imports_again_without_complaint(cli: Invoke, tmp_path: Path) -> None:
    cli("customers", "import", _write(tmp_path, "in.csv", HEADER + "12345678,X,production,,\n"))
    exported = cli("customers", "export", "--with-state").stdout
    result = cli("customers", "import", _write(tmp_path, "state.csv", exported))
    assert result.stdout.startswith("0 added, 0 updated, 1 unchanged")
    assert "not imported" not in result.stderr


def test_bad_tenants_managers_and_lengths_are_refused_by_line_and_nothing_is_stored(
    cli: Invoke, tmp_path: Path
) -> None:
    old = HEADER + f"11111111,Old,production,{T1},\n"
    assert cli("customers", "import", _write(tmp_path, "in.csv", old)).returncode == 0
    text = HEADER + (
        "12345678,Good,production,,U0AM\n"
        f"23456789,Twin A,production,{T2},\n"
        f"34567890,Twin B,production,{T2.upper()},\n"
        f"45678901,Taken,production,{T1},\n"
        "56789012,Free text manager,production,,Willem\n"
        f"67890123,{'N' * 201},production,,\n"
        f"78901234,Long manager,production,,U{'A' * 120}\n"
    )
    result = cli("customers", "import", _write(tmp_path, "bad.csv", text))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    err = result.stderr
    assert f"line 4: duplicate tenant_id {T2} (first on line 3)" in err
    assert f"line 5: tenant_id {T1} is already used by customer 11111111" in err
    assert "line 6: account_manager `Willem` is not a Slack user ID" in err
    assert "line 7: name has 201 characters; at most 200" in err
    assert "line 8: account_manager has 121 characters; at most 100" in err
    assert "nothing was imported" in err
    assert len(_rows(cli("customers", "export").stdout)) == 1
    # once the file itself is clean, a tenant that another customer holds is still refused
    taken = HEADER + "12345678,Good,production,,U0AM\n" + f"45678901,Taken,production,{T1},\n"
    result = cli("customers", "import", _write(tmp_path, "taken.csv", taken))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"line 3: tenant_id {T1} is already used by customer 11111111" in result.stderr
    assert len(_rows(cli("customers", "export").stdout)) == 1


def test_a_progress_bar_only_on_a_terminal(cli: Invoke, tmp_path: Path) -> None:
    body = "".join(f"{20000000 + i},Klant {i},production,,\n" for i in range(1500))
    name = _write(tmp_path, "many.csv", HEADER + body)
    quiet = cli("customers", "import", name)
    assert quiet.stderr == "" and quiet.stdout.startswith("1500 added")
    leader, follower = pty.openpty()
    try:
        shown = cli("customers", "import", name, stderr=follower)
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(leader)
    assert shown.returncode == 0
    assert b"importing" in output and b"100%" in output


async def test_bulk_import_adds_updates_and_links_across_chunks(database_url: str) -> None:
    rows = "".join(f"{30000000 + i},Klant {i},production,,U0AM\n" for i in range(2500))
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            report = await import_customers(parse_csv(HEADER + rows), session=session)
        assert (report.added, report.updated, report.unchanged) == (2500, 0, 0)
        changed = HEADER + rows.replace("Klant 1,production,,", f"Klant 1,production,{T1},")
        changed = changed.replace("Klant 2,", "Klant twee,")
        async with db.transaction() as session:
            report = await import_customers(parse_csv(changed), session=session)
        assert (report.added, report.updated, report.unchanged) == (0, 2, 2498)
        async with db.transaction() as session:
            linked = await session.scalar(select(Customer).where(Customer.kvk == "30000001"))
            assert linked is not None and linked.state == "pending" and linked.tenant_id == T1
            assert linked.next_check_at is not None
            changes = await session.scalar(select(func.count()).select_from(StateChange))
            assert changes == 2501  # one first state each, and invited -> pending
            chunks = export_customers(session=session, with_state=True)
            rows = _rows("".join([chunk async for chunk in chunks]))
            assert len(rows) == 2500 and rows[1]["kvk"] == "30000001"
            assert rows[1]["state"] == "pending" and rows[1]["state_since"].endswith("Z")
            taken = HEADER + f"30000005,Klant 5,production,{T1},U0AM\n"
            with pytest.raises(ImportRejected, match="problem"):
                await import_customers(parse_csv(taken), session=session)
    finally:
        await db.close()
