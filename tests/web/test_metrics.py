from __future__ import annotations

import asyncio
import time

from sqlalchemy import insert, text

from bot.core.clock import utcnow
from bot.core.metrics import record_upstream
from bot.domain import Environment, State
from bot.web import metrics
from bot.web.metrics import render
from storage.customers import NewCustomer, add_customer
from storage.db import Database
from storage.models import Notification


async def test_metrics_describe_the_fleet_from_the_database(db: Database) -> None:
    async with db.transaction() as session:
        await add_customer(
            NewCustomer("12345678", "A", Environment.PRODUCTION),
            session=session,
            state=State.INVITED,
        )
    record_upstream("visma", 429)
    body, content_type = await render(db)
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'brincr_customers{environment="production",state="invited"} 1.0' in text
    assert 'brincr_customers{environment="sandbox",state="invited"} 0.0' in text
    assert 'brincr_customers{environment="production",state="healthy"} 0.0' in text
    assert 'brincr_upstream_rate_limited_total{service="visma"}' in text
    assert "brincr_outbox_backlog 0.0" in text


async def test_parallel_scrapes_share_one_database_read_a_minute(db: Database) -> None:
    before = metrics.REFRESH.reads
    await asyncio.gather(*(render(db) for _ in range(40)))
    assert metrics.REFRESH.reads == before + 1
    await render(db)
    assert metrics.REFRESH.reads == before + 1  # served from the last read
    assert await metrics.refresh_if_due(db, now=time.monotonic() + metrics.REFRESH_EVERY + 1)
    assert metrics.REFRESH.reads == before + 2


async def test_a_scrape_reads_the_outbox_backlog_from_its_index_not_the_whole_table(
    sqlite_db: Database,
) -> None:
    now = utcnow()
    sent = [
        {"created_at": now, "kind": "post", "channel_id": "C1", "payload": {}, "status": s,
         "attempts": 1, "next_attempt_at": now}
        for s in ["sent"] * 100_000 + ["pending"] * 3 + ["failed"] * 2
    ]  # fmt: skip
    async with sqlite_db.transaction() as session:
        await session.execute(insert(Notification), sent)
    async with sqlite_db.transaction() as session:
        plan = await session.execute(
            text("EXPLAIN QUERY PLAN SELECT count(*) FROM outbox WHERE status = 'pending'")
        )
        detail = " ".join(str(row[-1]) for row in plan)
    assert "USING COVERING INDEX ix_outbox_due" in detail
    started = time.perf_counter()
    await metrics.refresh_gauges(sqlite_db)
    elapsed = time.perf_counter() - started
    body, _ = await render(sqlite_db)
    assert "brincr_outbox_backlog 3.0" in body.decode()
    assert "brincr_outbox_failed 2.0" in body.decode()
    assert elapsed < 0.5, f"a refresh with 100,000 delivered rows took {elapsed:.3f} s"
