"""Shared fixtures: real databases (SQLite always; PostgreSQL where TEST_DATABASE_URL answers).

Each pytest session that reaches PostgreSQL creates its own database (``brincr_test_<id>``)
and drops it at the end, so parallel runs never see each other's rows.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from bot.demo.fake_slack import FakeSlack
from bot.simulator import Simulator
from storage.db import Database, sync_url
from storage.migrate import upgrade
from storage.models import Base
from tests.fakes.pagerduty import ROUTING_KEY, FakePagerDuty
from tests.harness import WATCH, BotHarness, ErrorWatch, start_bot

# Vendored third-party data the tests validate against (see tests/data/README.md).
TEST_DATA = Path(__file__).resolve().parent / "data"


def _postgres_server_url() -> str | None:
    """``TEST_DATABASE_URL``, checked: None when unset (the postgres tests skip). Set but
    unreachable is a failure, not a skip: CI sets it, and a green run without PostgreSQL
    would hide every multi-replica test."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return None
    try:
        engine = create_engine(sync_url(url), connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # any driver error: say which, without the URL's password
        pytest.fail(
            f"TEST_DATABASE_URL is set but PostgreSQL does not answer ({type(error).__name__}); "
            "unset it to skip the PostgreSQL tests",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A freshly migrated PostgreSQL database for this session; skips when TEST_DATABASE_URL
    is not set, fails when it is set and the server does not answer."""
    with scratch_postgres("brincr_test") as url:
        upgrade(url)
        yield url


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database named ``prefix`` plus a random suffix on the server
    TEST_DATABASE_URL names, dropped afterwards; skips the test when that is not set."""
    server = _postgres_server_url()
    if server is None:
        pytest.skip("no PostgreSQL: set TEST_DATABASE_URL to a reachable server")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(sync_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate(url: str) -> None:
    """Empty every table of the schema and restart its sequences, as ``TRUNCATE … RESTART
    IDENTITY`` would: with DELETE, children first, because PostgreSQL's TRUNCATE of sixteen
    tables costs 0.3-0.4 s (new files for each) and these hold a test's few rows."""
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        names = "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename)"
        sequences = conn.execute(text(f"{names} FROM pg_sequences")).scalars()
        statements = [f'DELETE FROM "{t.name}"' for t in reversed(Base.metadata.sorted_tables)]
        statements += [f"ALTER SEQUENCE {sequence} RESTART" for sequence in sequences]
        conn.exec_driver_sql("; ".join(statements))
    engine.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head for the session: each test gets a copy of it, a
    millisecond instead of running every migration again (about 0.1 s a test)."""
    path = tmp_path_factory.mktemp("template") / "brincr-bot.db"
    upgrade(f"sqlite:///{path}")  # its engine is disposed: the WAL is checkpointed, gone
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """A migrated SQLite database of the test's own (a copy of the session's template)."""
    path = tmp_path / "brincr-bot.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: SQLite, and PostgreSQL where reachable."""
    if request.param == "sqlite":
        url: str = request.getfixturevalue("sqlite_url")
        return url
    url = request.getfixturevalue("postgres_url")
    _truncate(url)
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.close()


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    yield database
    await database.close()


# --- the network edge: a fake Slack Web API, the Visma/Brincr stand-in, a whole bot --------


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as simulator:
        yield simulator


@pytest.fixture
def fakes(slack: FakeSlack, sim: Simulator) -> tuple[FakeSlack, Simulator]:
    """The fake Slack Web API and the Visma/Brincr stand-in, for tests that run ``serve``."""
    return slack, sim


@pytest.fixture
async def bot(sqlite_url: str, slack: FakeSlack, sim: Simulator) -> AsyncIterator[BotHarness]:
    """The whole bot on SQLite (no scheduler: tests drive checks themselves)."""
    harness = await start_bot(sqlite_url, slack, sim)
    yield harness
    await harness.close()


@pytest.fixture(autouse=True)
def error_watch(request: pytest.FixtureRequest) -> Iterator[ErrorWatch]:
    """Fails a test that ran the whole bot when an ERROR line it did not expect was logged
    (``@pytest.mark.expected_errors("text", …)`` or ``error_watch.expect("text")``)."""
    watch = ErrorWatch()
    for marker in request.node.iter_markers("expected_errors"):
        watch.expect(*marker.args)
    root = logging.getLogger()
    root.addHandler(watch)
    WATCH.append(watch)
    yield watch
    WATCH.remove(watch)
    root.removeHandler(watch)
    unexpected = watch.unexpected()
    if watch.whole_system and unexpected:
        pytest.fail(
            "unexpected ERROR lines in the bot's log (declare them with "
            "@pytest.mark.expected_errors if they are the right outcome):\n  "
            + "\n  ".join(unexpected[:20]),
            pytrace=False,
        )


@pytest.fixture
async def pd() -> AsyncIterator[FakePagerDuty]:
    """A local PagerDuty Events API stand-in."""
    async with FakePagerDuty() as fake:
        yield fake


@pytest.fixture
async def paging_bot(
    sqlite_url: str, slack: FakeSlack, sim: Simulator, pd: FakePagerDuty
) -> AsyncIterator[BotHarness]:
    """The whole bot on SQLite, paging ``pd`` (no scheduler: tests drive checks)."""
    harness = await start_bot(
        sqlite_url, slack, sim, pagerduty_routing_key=ROUTING_KEY, pagerduty_events_url=pd.url
    )
    yield harness
    await harness.close()
