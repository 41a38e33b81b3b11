from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import make_url

from bot.core.errors import UserError
from bot.domain import Environment, State
from storage.customers import (
    AmbiguousCustomer,
    CustomerNotFound,
    NewCustomer,
    add_customer,
    change_state,
    find_customer,
)
from storage.db import Database, async_url, safe_url, sync_url
from storage.facts import counts_by_state
from storage.migrate import upgrade

TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


async def _seed(db: Database) -> None:
    async with db.transaction() as session:
        for kvk, name, tenant in [
            ("12345678", "Bouwbedrijf De Vries B.V.", TENANT),
            ("23456789", "De Vries Installatietechniek", None),
            ("34567890", "100%_Beton", None),
        ]:
            await add_customer(
                NewCustomer(kvk, name, Environment.PRODUCTION, tenant),
                session=session,
                state=State.PENDING if tenant else State.INVITED,
            )


async def test_a_customer_is_found_by_kvk_tenant_or_unique_name(db: Database) -> None:
    await _seed(db)
    async with db.transaction() as session:
        assert (await find_customer("1234 56.78", session=session)).kvk == "12345678"
        assert (await find_customer(TENANT.upper(), session=session)).kvk == "12345678"
        assert (await find_customer("installatie", session=session)).kvk == "23456789"
        assert (await find_customer("100%_", session=session)).kvk == "34567890"


async def test_an_ambiguous_name_lists_the_candidates(db: Database) -> None:
    await _seed(db)
    async with db.transaction() as session:
        with pytest.raises(AmbiguousCustomer) as caught:
            await find_customer("de vries", session=session)
    assert {c.kvk for c in caught.value.candidates} == {"12345678", "23456789"}


async def test_unknown_and_oversize_queries_are_user_errors(db: Database) -> None:
    await _seed(db)
    async with db.transaction() as session:
        with pytest.raises(CustomerNotFound):
            await find_customer("99999999", session=session)
        with pytest.raises(CustomerNotFound):
            await find_customer("no such name", session=session)
        with pytest.raises(UserError):
            await find_customer("x" * 5000, session=session)


async def test_state_changes_are_recorded_once(db: Database) -> None:
    await _seed(db)
    async with db.transaction() as session:
        customer = await find_customer("12345678", session=session)
        assert await change_state(customer, State.HEALTHY, session=session, reason="ok")
        assert not await change_state(customer, State.HEALTHY, session=session)
    async with db.transaction() as session:
        counts = await counts_by_state(session=session)
    assert counts == {"healthy": 1, "invited": 2}


def test_database_urls_get_their_driver_and_hide_passwords() -> None:
    assert async_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert async_url("postgres://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert sync_url("postgresql://u:p@h/d") == "postgresql+psycopg://u:p@h/d"
    assert "p@" not in safe_url("postgresql://u:p@h/d")
    with pytest.raises(ValueError, match="unsupported"):
        async_url("mysql://u@h/d")


def test_head_is_the_newest_migration_and_an_older_schema_is_still_upgraded(
    tmp_path: Path,
) -> None:
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, text

    from storage.migrate import HEAD, alembic_config, upgrade

    url = f"sqlite:///{tmp_path}/old.db"
    assert ScriptDirectory.from_config(alembic_config(url)).get_current_head() == HEAD
    upgrade(url, "0002")
    upgrade(url)  # not at HEAD: Alembic runs the rest
    upgrade(url)  # at HEAD: recognised with one query
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (HEAD,)
        ]
        names = set(connection.execute(text("SELECT name FROM sqlite_master")).scalars())
        assert "ix_webhook_events_body_hash" in names  # made by 0003
        assert "alert_holds" in names and "peer_looks" in names  # made by 0006
        assert "claim_budgets" in names  # made by 0008
    engine.dispose()


def test_0004_keeps_the_body_hashes_of_deliveries_received_before_it(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path}/hashes.db"
    upgrade(url, "0003")
    digest = "ab" * 32
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO webhook_events (notification_id, event, received_at, body, "
                 "body_hash, attempts) VALUES ('n1', 'e', '2026-11-01 10:00:00', '{}', :h, 0)"),
            {"h": digest},
        )  # fmt: skip
    upgrade(url)
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT body_hash FROM webhook_body_hashes")).scalars()
        assert list(kept) == [bytes.fromhex(digest)]
    engine.dispose()


def test_a_query_parameter_password_is_not_logged_at_start(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 19, finding 5: ``?password=`` (libpq accepts it) never reaches the log."""
    caplog.set_level(logging.INFO)
    url = make_url(postgres_url).update_query_dict({"password": "hunter2"})
    upgrade(url.render_as_string(hide_password=False))
    said = "\n".join(r.getMessage() for r in caplog.records)
    assert "database schema is up to date at" in said and "password=***" in said
    assert "hunter2" not in said
    assert "hunter2" not in safe_url("sqlite:///x.db?password=hunter2&token=t")
