"""``db current``, ``db downgrade``, and the reading commands on a database that was never
migrated: they create nothing and say the schema is missing (exit 2)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, inspect

from bot.cli import main
from storage.db import sync_url
from storage.migrate import HEAD, known_revisions, upgrade
from tests.conftest import scratch_postgres


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DATABASE_URL", "SECRETS_DIR", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BRINCR_SCOPES", "brincr:category")
    monkeypatch.setenv("PRODUCTION_CLIENT_ID", "app")
    monkeypatch.setenv("PRODUCTION_CLIENT_SECRET", "not-a-real-secret")
    # In-process runs: the commands' logging set-up would replace this pytest process's root
    # handlers and filters for every later test (their own output is what these tests read).
    monkeypatch.setattr("bot.core.logs.configure_logging", lambda *args, **kwargs: None)
    return CliRunner()


def run(cli: CliRunner, url: str, *args: str, stdin: str | None = None) -> Result:
    return cli.invoke(main, list(args), env={"DATABASE_URL": url}, input=stdin)


def tables(url: str) -> list[str]:
    engine = create_engine(sync_url(url))
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture
def empty_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()  # an existing file, never migrated
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    "args", [("customers", "export"), ("customers", "export", "--with-state"), ("check",),
             ("check", "12345678", "--json"), ("db", "current")],
)  # fmt: skip
def test_a_reading_command_on_a_never_migrated_database_creates_nothing_and_exits_2(
    cli: CliRunner, empty_sqlite: str, args: tuple[str, ...]
) -> None:
    result = run(cli, empty_sqlite, *args)
    assert result.exit_code == 2, result.output
    assert "no brincr-bot schema yet" in result.stderr and "db upgrade" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert tables(empty_sqlite) == []


@pytest.fixture
def postgres_empty_url() -> Iterator[str]:
    """A new, empty PostgreSQL database (never migrated); skips without TEST_DATABASE_URL."""
    with scratch_postgres("brincr_empty") as url:
        yield url


@pytest.mark.postgres
def test_a_reading_command_on_an_empty_postgresql_database_creates_nothing(
    cli: CliRunner, postgres_empty_url: str
) -> None:
    result = run(cli, postgres_empty_url, "customers", "export")
    assert result.exit_code == 2 and "no brincr-bot schema yet" in result.stderr
    assert tables(postgres_empty_url) == []


def test_db_current_names_the_revision_and_what_is_pending(
    cli: CliRunner, empty_sqlite: str
) -> None:
    upgrade(empty_sqlite)
    result = run(cli, empty_sqlite, "db", "current")
    assert (result.exit_code, result.stdout) == (0, f"{HEAD} (head): up to date\n")
    first, *later = known_revisions()
    assert later and later[-1] == HEAD
    result = run(cli, empty_sqlite, "db", "downgrade", first, "--yes")
    assert result.exit_code == 0, result.output
    assert f"database schema is now at {first}" in result.stdout
    result = run(cli, empty_sqlite, "db", "current")
    assert result.exit_code == 1
    assert result.stdout == f"{first}: behind; pending {' '.join(later)} (head {HEAD})\n"
    # A reading command brings an existing schema up to date, as before.
    result = run(cli, empty_sqlite, "customers", "export")
    assert result.exit_code == 0, result.output
    assert run(cli, empty_sqlite, "db", "current").exit_code == 0


def test_db_downgrade_asks_first_and_refuses_a_revision_it_does_not_know(
    cli: CliRunner, empty_sqlite: str
) -> None:
    upgrade(empty_sqlite)
    before = sorted(tables(empty_sqlite))
    refused = run(cli, empty_sqlite, "db", "downgrade", "-1", stdin="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert sorted(tables(empty_sqlite)) == before
    bad = run(cli, empty_sqlite, "db", "downgrade", "9999", "--yes")
    assert bad.exit_code == 2 and "not a revision" in bad.stderr
    assert run(cli, empty_sqlite, "db", "current").stdout.startswith(f"{HEAD} (head)")
    undone = run(cli, empty_sqlite, "db", "downgrade", "base", "--yes")
    assert undone.exit_code == 0 and "base (empty)" in undone.stdout
    assert tables(empty_sqlite) == ["alembic_version"]
    assert run(cli, empty_sqlite, "db", "upgrade").exit_code == 0
    assert sorted(tables(empty_sqlite)) == before  # and back up again


def test_db_current_on_a_revision_from_a_newer_version_says_so(
    cli: CliRunner, empty_sqlite: str
) -> None:
    upgrade(empty_sqlite)
    with sqlite3.connect(empty_sqlite.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    result = run(cli, empty_sqlite, "db", "current")
    assert result.exit_code == 1 and "9999: unknown to brincr-bot" in result.stdout
