"""Apply Alembic migrations programmatically (``brincr-bot db upgrade``, ``serve`` at start).

On PostgreSQL an advisory lock makes concurrent starts of several replicas safe: one migrates,
the others wait and then find nothing to do. A database already at ``HEAD`` is recognised with
one query, without loading Alembic (about 60 ms of imports that ``check`` pays per run).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, inspect, pool, text

from storage.db import connect_args, safe_url, sync_url

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x6272696E63  # "brinc": an arbitrary constant shared by every replica
HEAD = "0008"  # the newest revision in migrations/versions (tests/storage/test_storage.py holds it)


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@contextlib.contextmanager
def _connected(database_url: str) -> Iterator[Connection]:
    """One transaction on its own engine. Connecting is bounded; statements are not (a large
    migration, or waiting for another replica's migration behind the advisory lock, may take
    a while)."""
    engine = create_engine(
        sync_url(database_url),
        poolclass=pool.NullPool,
        hide_parameters=True,
        connect_args=connect_args(database_url, statement_timeout=False),
    )
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at ``database_url`` to ``revision``."""
    with _connected(database_url) as connection:
        if revision == "head" and _at_head(connection):
            log.info("database schema is up to date at %s", safe_url(database_url))
            return
        _migrate(connection, database_url, "upgrade", revision)
    log.info("database schema is up to date at %s", safe_url(database_url))


def downgrade(database_url: str, revision: str) -> None:
    """Take the schema at ``database_url`` back to ``revision`` (``0002``, ``-1``, ``base``),
    running each migration's ``downgrade()``: columns and tables added since are dropped."""
    with _connected(database_url) as connection:
        _migrate(connection, database_url, "downgrade", revision)
    log.info("database schema downgraded to %s at %s", revision, safe_url(database_url))


def _migrate(connection: Connection, database_url: str, direction: str, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    config = alembic_config(database_url)
    config.attributes["connection"] = connection
    getattr(command, direction)(config, revision)


def current(database_url: str) -> str | None:
    """The schema's revision at ``database_url``; None when it was never migrated. Reads
    only: a database without a schema stays without one."""
    with _connected(database_url) as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return next(iter(versions), None)


def known_revisions() -> list[str]:
    """Every revision in migrations/versions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


class SchemaMissing(Exception):
    """The database has no schema: nothing to read, and a reading command must not make one."""


def upgrade_existing(database_url: str) -> None:
    """For a command that reads the fleet: bring an existing schema up to date, but raise
    :class:`SchemaMissing` for a database that was never migrated, creating nothing."""
    with _connected(database_url) as connection:
        if not inspect(connection).has_table("alembic_version"):
            raise SchemaMissing(safe_url(database_url))
        if _at_head(connection):
            return
        _migrate(connection, database_url, "upgrade", "head")
    log.info("database schema is up to date at %s", safe_url(database_url))


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return list(versions) == [HEAD]
