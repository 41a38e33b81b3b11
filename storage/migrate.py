"""Apply Alembic migrations programmatically (``brincr-bot db upgrade``, ``serve`` at start).

On PostgreSQL an advisory lock makes concurrent starts of several replicas safe: one migrates,
the others wait and then find nothing to do.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, pool, text

from storage.db import connect_args, safe_url, sync_url

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x6272696E63  # "brinc": an arbitrary constant shared by every replica


def alembic_config(database_url: str) -> Config:
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
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
    log.info("database schema is up to date at %s", safe_url(database_url))
