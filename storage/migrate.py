"""Apply Alembic migrations programmatically (``brincr-bot db upgrade``, ``serve`` at start).

On PostgreSQL an advisory lock makes concurrent starts of several replicas safe: one migrates,
the others wait and then find nothing to do. A database already at ``HEAD`` is recognised with
one query, without loading Alembic (about 60 ms of imports that ``check`` pays per run).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, inspect, pool, text

from storage.db import connect_args, safe_url, sync_url

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x6272696E63  # "brinc": an arbitrary constant shared by every replica
HEAD = "0006"  # the newest revision in migrations/versions (tests/storage/test_storage.py holds it)


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at ``database_url`` to ``revision``."""
    # Connecting is bounded; statements are not (a large migration, or waiting for another
    # replica's migration behind the advisory lock, may take a while).
    engine = create_engine(
        sync_url(database_url),
        poolclass=pool.NullPool,
        hide_parameters=True,
        connect_args=connect_args(database_url, statement_timeout=False),
    )
    try:
        with engine.begin() as connection:
            if revision == "head" and _at_head(connection):
                log.info("database schema is up to date at %s", safe_url(database_url))
                return
            from alembic import command

            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
    log.info("database schema is up to date at %s", safe_url(database_url))


def _at_head(connection: Connection) -> bool:
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return list(versions) == [HEAD]
