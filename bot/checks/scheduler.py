"""Scheduled work in ``serve`` (APScheduler on the asyncio loop), as small idempotent ticks:

- **sweep**: claim the customers whose check is due before the next tick
  (``storage.scheduling.claim_due``) and check them concurrently, in the background (up to
  ``MAX_BATCHES`` ticks' worth at once, sharing CHECK_CONCURRENCY), so a slow customer never
  holds back the next tick's; what a sweep claimed and did not record is released when it
  ends. The whole fleet of workers claims at most 1.5 × the fleet's share
  (``linked × tick ÷ CHECK_INTERVAL``) per tick window: a budget in the database that every
  replica's claim locks, takes from and adds to (``storage.scheduling.open_budget``;
  windows of one tick from the epoch, by the app's clock). So a fleet that is all due at
  once (first start, a restart after downtime, an outage's end, a bulk import) is spread
  over the interval instead of checked in one burst, however many ``--role worker``
  replicas catch up together (each paced only itself before: two sent 3.05 × the steady
  rate); after one round each customer keeps its own slot (``next_check_at = checked_at +
  interval``). Within a tick the checks are spread too (:func:`start_times`): each starts at
  its slot, never early; the overdue ones take the fleet's next places in the window's
  budget, which is spread over the following window one every ``tick ÷ budget`` seconds:
  claim n of a window (whichever worker made it) starts n × that step after the next window
  begins. The replicas together therefore send the overdue at 1.5 × the fleet's rate, never
  two workers' at once, and Visma sees no burst at each tick (at a 15-minute interval a tick
  is 10 s: a tick's checks at once were 3 × the steady rate over 5 s;
  bench/upstream_flatness.py). Customers in trouble come back sooner with backoff
  (``bot.checks.recording.next_check_delay``).
- **retention**: prune raw results, keep rollups and state changes (``storage.retention``).
- the features' own jobs, given at construction by the composition root (:class:`Job`): alert
  upkeep (reminders, ended snoozes, upstream incidents), stale-invitation nudges.

Misfires and overlaps: every job has ``max_instances=1`` and ``coalesce=True``: a tick that
runs long delays the next one instead of stacking them; ticks missed while the process was
stopped are not replayed (the database's ``next_check_at`` already says what is overdue).
A claim is a lease: a replica that dies mid-check leaves rows that others take when it ends;
what it took from a window's budget ends with the window.
A watchdog logs a stall (no tick completed, or a sweep's checks under way, for a check
interval) once as ERROR; :meth:`Scheduler.readiness` (``/readyz``) reports it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.checks.service import CheckService
from bot.core.clock import utcnow
from bot.core.logs import correlation_id
from bot.core.metrics import LAST_SWEEP
from bot.services import Services
from storage.db import DATABASE_ERRORS, one_line
from storage.retention import prune_history
from storage.scheduling import (
    Budget,
    Claimed,
    claim_due,
    count_linked,
    open_budget_unless_held,
    release,
    spend_budget,
)

log = logging.getLogger(__name__)
Tick = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class Job:
    """A feature's periodic tick: claimed rows, idempotent, safe on every replica."""

    name: str
    tick: Tick
    every: timedelta


LEASE_MAX = timedelta(minutes=5)
STALE_AFTER_INTERVALS = 1  # a stall is seen within 1.25 intervals (the watchdog's pace)
MAX_BATCHES = 8  # sweeps whose checks are still under way; more wait for the next tick
RELEASED_RETRY = timedelta(minutes=1)  # a claimed check that was not recorded comes back then


def tick_seconds(interval: timedelta) -> float:
    """How often the sweep looks for due customers: 1/30 of the interval, 0.2–10 s."""
    return max(0.2, min(10.0, interval.total_seconds() / 30))


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_start(now: datetime, tick: float) -> datetime:
    """The start of the tick window ``now`` is in: windows of ``tick`` seconds from the
    epoch, the same on every worker (exact: whole microseconds, no float rounding)."""
    length = timedelta(seconds=tick)
    return EPOCH + (now - EPOCH) // length * length


def start_times(
    claimed: Sequence[Claimed], now: datetime, clock: float, step: float, first: float = 0.0
) -> dict[int, float]:
    """When (``clock``'s time base) each claimed check may start: a customer due later at
    its slot, never early; the overdue ones ``first`` seconds from ``now`` and then one
    every ``step`` seconds, most overdue first. The sweep passes the places its claim took
    in the fleet's budget (:meth:`Scheduler.sweep_tick`): the workers' overdue checks
    follow one another at the budget's pace, never two workers' at once."""
    starts: dict[int, float] = {}
    overdue = 0
    for claim in claimed:
        ahead = (claim.due - now).total_seconds()
        if ahead > 0:
            starts[claim.id] = clock + ahead
        else:
            starts[claim.id] = clock + first + overdue * step
            overdue += 1
    return starts


class Claim(NamedTuple):
    """One sweep's claim: the fleet's budget per tick window, the window's budget as the
    claim found it (before its own), and the customers it claimed."""

    limit: int
    budget: Budget
    claimed: list[Claimed]


class Scheduler:
    def __init__(
        self,
        services: Services,
        checker: CheckService,
        *,
        worker_id: str,
        jobs: Sequence[Job] = (),
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.checker = checker
        self.jobs = tuple(jobs)
        self.worker = worker_id
        self.tick = tick_seconds(self.settings.check_interval)
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[object]] = set()
        self._stopping = False
        self._started = time.monotonic()
        self.last_sweep: float | None = None  # monotonic time the last sweep tick completed
        self._batches: dict[asyncio.Task[None], float] = {}  # checks under way, since when
        self._watchdog: asyncio.Task[None] | None = None
        self._stalled: str | None = None  # why, while a stall is being reported
        self._held_since = 0.0  # monotonic time another worker's hold on the budget was seen

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        self._add(scheduler, "sweep", self.sweep_tick, self.tick)
        self._add(scheduler, "retention", self.retention, 3600.0)
        for job in self.jobs:
            self._add(scheduler, job.name, self._waking(job.tick), job.every.total_seconds())
        scheduler.start()
        self._scheduler = scheduler
        self._started = time.monotonic()
        self._watchdog = asyncio.create_task(self._watch(), name="scheduler-watchdog")
        log.info("scheduler started: sweep every %.1fs as %s", self.tick, self.worker)

    def _add(self, scheduler: AsyncIOScheduler, name: str, job: Tick, seconds: float) -> None:
        scheduler.add_job(
            self._tracked(name, job), "interval", seconds=seconds, id=name, max_instances=1,
            coalesce=True, misfire_grace_time=None, next_run_time=datetime.now(UTC),
        )  # fmt: skip

    def _tracked(self, name: str, job: Tick) -> Callable[[], Awaitable[None]]:
        """Run ``job`` as a task ``stop()`` can wait for; log (never raise) its failure."""

        async def run() -> None:
            if self._stopping:
                return
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            token = correlation_id.set(f"{name}-{int(time.time())}")
            try:
                await job()
            except DATABASE_ERRORS as error:  # an outage: one line a tick, no traceback storm
                log.warning("scheduled job %s failed: database: %s", name, one_line(error))
            except Exception:  # a failed tick is logged and retried next tick; never fatal
                log.exception("scheduled job %s failed", name)
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                log.warning("scheduled job %s cut at stop", name)  # stop() releases claims
            finally:
                correlation_id.reset(token)
                self._running.discard(task)

        return run

    async def stop(self, grace: float = 30.0) -> None:
        """Let running jobs finish within ``grace`` seconds, cancel the rest (a check cut
        there records nothing; its customer's claim is released by the caller, or expires),
        then stop the scheduler (its executor would cancel them mid-transaction, leaking their
        database connections)."""
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._scheduler is not None:
            # Nothing new is submitted; what was submitted starts now and returns (stopping)
            # or registers as running: APScheduler's shutdown would cancel a job that had not
            # started yet and log that as "Error running job".
            self._scheduler.pause()
            await asyncio.sleep(0)
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    async def sweep(self, now: datetime | None = None) -> int:
        """Claim what is due (within the fleet's budget of the tick window of ``now``,
        default the clock's) and check it now. Returns how many were checked."""
        ids = [claim.id for claim in (await self._claim(now)).claimed]
        if ids:
            await self._check(ids)
        self.last_sweep = time.monotonic()
        LAST_SWEEP.set_to_current_time()
        return len(ids)

    async def sweep_tick(self) -> None:
        """The scheduled sweep: claim what is due and check it in the background, so a slow
        customer (up to CHECK_TIMEOUT) never holds back the next tick's customers. The
        checks of every tick share CHECK_CONCURRENCY (``CheckService.check_many``)."""
        if len(self._batches) < MAX_BATCHES:
            clock = asyncio.get_running_loop().time()
            now = utcnow()
            claim = await self._claim(now)
            if claim.claimed:
                starts = self.plan(claim, now, clock)
                task = asyncio.create_task(self._check([c.id for c in claim.claimed], starts))
                self._batches[task] = time.monotonic()
                self._running.add(task)
                task.add_done_callback(self._batch_done)
        self.last_sweep = time.monotonic()
        LAST_SWEEP.set_to_current_time()

    def plan(self, claim: Claim, now: datetime, clock: float) -> dict[int, float]:
        """When each of ``claim``'s checks may start (``clock``'s time base, read at ``now``):
        the window's budget is spread over the next window, one place every ``tick ÷
        limit``; the claim's overdue checks take the places after those every worker
        already claimed in the window (``claim.budget.claimed``), so two workers' overdue
        checks never run side by side. The first is ahead of ``now`` by up to two ticks."""
        step = self.tick / claim.limit
        next_window = (claim.budget.window_start - now).total_seconds() + self.tick
        first = next_window + claim.budget.claimed * step
        return start_times(claim.claimed, now, clock, step, first)

    def _batch_done(self, task: asyncio.Task[None]) -> None:
        self._batches.pop(task, None)
        self._running.discard(task)

    async def _claim(self, now: datetime | None = None) -> Claim:
        """This tick's claims, within what is left of the fleet's budget for the window."""
        now = now or utcnow()
        interval = self.settings.check_interval
        window = window_start(now, self.tick)
        async with self.services.db.transaction() as session:
            # First: every worker's claim waits here for the one before it to commit
            shared = await open_budget_unless_held(session=session, window_start=window)
            self._budget_held(shared is None)
            budget = shared or Budget(window, 0)  # held: this worker's own pace, for now
            linked = await count_linked(session=session)
            limit = max(10, math.ceil(linked * self.tick / interval.total_seconds() * 1.5))
            room = max(0, limit - budget.claimed)
            if not room:
                return Claim(limit, budget, [])
            lease = now + min(LEASE_MAX, max(interval, timedelta(seconds=30)))
            # Due before the next tick is claimed now and started at its slot (start_times):
            # left for the next tick, it would start late by up to a tick, every interval (a
            # slow drift).
            horizon = now + timedelta(seconds=self.tick)
            claimed = await claim_due(
                session=session, now=now, due_by=horizon, lease_until=lease,
                worker=self.worker, limit=room,
            )  # fmt: skip
            if shared is not None:
                await spend_budget(len(claimed), session=session)
            return Claim(limit, budget, claimed)

    def _budget_held(self, held: bool) -> None:
        """Say once when another worker holds the fleet's claim budget, and once when not."""
        if held and not self._held_since:
            self._held_since = time.monotonic()
            log.warning(
                "the fleet's claim budget is held by another worker (frozen in its claim?): "
                "claiming at this worker's own pace until it is free"
            )
        elif not held and self._held_since:
            log.info("the fleet's claim budget is free again after %.0fs",
                     time.monotonic() - self._held_since)  # fmt: skip
            self._held_since = 0.0

    async def _check(self, ids: list[int], start_at: dict[int, float] | None = None) -> None:
        """Check claimed customers (each not before ``start_at``, event-loop time); whatever
        was not recorded is released, never left claimed until its lease ends."""
        try:
            await self.checker.check_many(ids, start_at=start_at)
            self.services.wake_outbox()
            log.info("sweep checked %d customers", len(ids))
        except Exception:  # logged; the claims are released below either way
            log.exception("sweep of %d customers failed", len(ids))
        finally:
            await self._release(ids)

    async def _release(self, ids: list[int]) -> None:
        retry = utcnow() + min(RELEASED_RETRY, self.settings.check_interval)
        try:
            async with self.services.db.transaction() as session:
                released = await release(ids, session=session, worker=self.worker,
                                         next_check_at=retry)  # fmt: skip
        except Exception as error:  # the database is gone: the leases end by themselves
            log.error("releasing %d claims failed (%s)", len(ids), type(error).__name__)
            return
        if released:
            log.warning("%d of %d claimed checks were not recorded: released", released, len(ids))

    def _waking(self, tick: Tick) -> Tick:
        """A feature's tick, then a nudge to the outbox sender for what it enqueued."""

        async def run() -> None:
            await tick()
            self.services.wake_outbox()

        return run

    async def retention(self) -> None:
        await prune_history(self.services.db)  # logs what it removed

    async def readiness(self) -> tuple[bool, str]:
        """Not ready when no sweep tick completed for a check interval, or a sweep's checks
        have been under way that long: stalled, by a hung database or anything else."""
        if self._scheduler is None:
            return False, "scheduler not running"
        stall = self._stall()
        if stall is not None:
            return False, stall
        since = time.monotonic() - (self.last_sweep or self._started)
        return True, f"last sweep {since:.1f}s ago"

    def _stall(self) -> str | None:
        limit = STALE_AFTER_INTERVALS * self.settings.check_interval.total_seconds()
        now = time.monotonic()
        since = now - (self.last_sweep or self._started)
        if since > limit:
            return f"no sweep completed for {since:.0f}s (limit {limit:.0f}s)"
        oldest = min(self._batches.values(), default=now)
        if now - oldest > limit:
            return (
                f"a sweep's checks have been running for {now - oldest:.0f}s (limit {limit:.0f}s)"
            )
        return None

    async def _watch(self) -> None:
        """Log a stall loudly, once (ERROR), and its end, even when nobody asks /readyz."""
        pace = STALE_AFTER_INTERVALS * self.settings.check_interval.total_seconds() / 4
        while True:
            await asyncio.sleep(pace)
            stall = self._stall()
            if stall is not None and self._stalled is None:
                log.error("scheduler stalled: %s; customers are not being checked", stall)
            elif stall is None and self._stalled is not None:
                log.warning("scheduler running again (was: %s)", self._stalled)
            self._stalled = stall
