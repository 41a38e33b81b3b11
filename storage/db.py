"""Engines and sessions. One async stack: aiosqlite (embedded default) or psycopg 3 (PostgreSQL).

``DATABASE_URL`` keeps its plain form (``sqlite:///file.db``, ``postgresql://…``); the driver
is chosen here. Alembic runs on the sync flavour of the same driver (see storage/migrate.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.core.redact import hide_url_secrets

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}


# Every wait on the database is bounded, so a server that accepts and never answers cannot
# hang a start, a stop or a tick: connecting, waiting for a pooled connection, one statement.
CONNECT_TIMEOUT = 5  # seconds (psycopg ``connect_timeout``: the whole connection set-up)
POOL_TIMEOUT = 10  # seconds to wait for a free pooled connection
STATEMENT_TIMEOUT_MS = 30_000  # PostgreSQL ``statement_timeout`` of the bot's own sessions
SQLITE_BUSY_TIMEOUT = 10  # seconds SQLite waits for another writer's lock


def check_url(url: str) -> str:
    """The backend of a usable ``DATABASE_URL`` ("sqlite" or "postgresql"); ValueError with
    a readable reason (never the URL itself: it may hold a password) when it is not."""
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError:
        raise ValueError(
            "not a database URL: use sqlite:///path/to/file.db or postgresql://user@host/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return backend


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    backend = check_url(url)
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def connect_args(url: str, *, statement_timeout: bool = True) -> dict[str, Any]:
    """The driver's timeouts for ``url`` (see the constants above)."""
    if check_url(url) == "sqlite":
        return {"timeout": SQLITE_BUSY_TIMEOUT}
    args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
    if statement_timeout:
        args["options"] = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
    return args


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL and in-memory databases)."""
    if check_url(url) != "sqlite":
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def require_existing(url: str) -> None:
    """ValueError when ``url`` is an SQLite file that does not exist: a command that only
    reads must not create an empty database from a mistyped URL. (A PostgreSQL database
    that does not exist is refused by the server.)"""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise ValueError(
            f"the SQLite database {path} does not exist: check the path, or create it with "
            "`brincr-bot db upgrade`"
        )


def async_url(url: str) -> str:
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> str:
    return _with_driver(url, _SYNC_DRIVERS)


def safe_url(url: str) -> str:
    """The URL with its password hidden (user info and query parameters), for logs and
    error text."""
    return hide_url_secrets(make_url(url).render_as_string(hide_password=True))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First: the journal-mode pragma itself may meet another connection's lock (one opening
    # the file, a checkpoint) and would fail at once with "database is locked" without it.
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """The engine and a session factory. ``async with db.transaction() as session`` is one
    unit of work: committed when the block ends, rolled back on an exception."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        # hide_parameters: errors and echo never carry bound values (invitation codes, bodies)
        kwargs: dict[str, Any] = {
            "pool_pre_ping": True,
            "hide_parameters": True,
            "connect_args": connect_args(url),
        }
        if make_url(async_url(url)).get_backend_name() == "postgresql":
            # SQLite's pool is a NullPool in older SQLAlchemy (2.0.33, our floor), which
            # refuses pool arguments; its waits are bounded by the busy timeout instead.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=POOL_TIMEOUT)
        self.engine: AsyncEngine = create_async_engine(async_url(url), **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> str | None:
        """None when the database answers a trivial query, else what went wrong (one line)."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as error:  # any driver error means "not ready"; /readyz reports it
            return one_line(error)
        return None

    async def close(self) -> None:
        await self.engine.dispose()


# What a database outage raises: the driver's errors (wrapped by SQLAlchemy), a connect or
# statement timeout, the pool's timeout, a dropped socket.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (DBAPIError, SQLAlchemyTimeoutError,
                                                    TimeoutError, OSError)  # fmt: skip


def one_line(error: BaseException, limit: int = 200) -> str:
    """An error as one short log line: its class and the first line of its message (a
    driver's message can carry the SQL and its parameters on later lines)."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    first = text[0] if text else ""
    name = type(getattr(error, "orig", None) or error).__name__
    return f"{name}: {first[:limit]}" if first else name


def affected_rows(result: Any) -> int:
    """How many rows an UPDATE or DELETE matched: the conditional-update claims check it
    (``Result`` hides ``rowcount``, which only its cursor-backed subclass has)."""
    return int(result.rowcount or 0)


def upsert_into(table: Table, session: AsyncSession) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` into ``table`` in the session's dialect, for ``ON CONFLICT`` clauses
    (PostgreSQL's and SQLite's spell them alike). The dialect module is imported here, when
    used: importing both up front costs every ``brincr-bot`` command ~30 ms."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


async def once_per_transaction(
    session: AsyncSession, key: str, load: Callable[[], Awaitable[T]]
) -> T:
    """``load()``'s answer, asked once per transaction (each ``Database.transaction`` has its
    own session; the answer is kept in SQLAlchemy's per-session ``info``). For a question
    every check of a recorded batch would otherwise ask the database again; whoever writes
    what changes the answer calls :func:`forget`."""
    if key not in session.info:
        session.info[key] = await load()
    value: T = session.info[key]
    return value


def forget(session: AsyncSession, key: str) -> None:
    session.info.pop(key, None)
