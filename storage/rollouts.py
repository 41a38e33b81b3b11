"""Queries of a scope rollout (``BRINCR_ROLLOUT_SCOPES``, bot/onboarding/rollout.py): which
linked customers have switched the rollout scopes ON, the tracker messages' shared records
and the once-a-day reminder claims. Every function takes ``session`` by keyword; the caller
owns the transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import affected_rows
from storage.models import Customer, KeyValue

TRACKER_PREFIX = "rollout-tracker:"


@dataclass(frozen=True)
class Standing:
    """One linked customer's standing in a rollout."""

    id: int
    kvk: str
    name: str
    environment: str
    account_manager: str | None
    lacking: tuple[str, ...]  # of the rollout's scopes, those not switched ON (as last known)
    asked: bool  # a token request has named the rollout scopes (else: not known yet)

    @property
    def switched_on(self) -> bool:
        return self.asked and not self.lacking


async def standings(scopes: Sequence[str], *, session: AsyncSession) -> list[Standing]:
    """Every customer with a tenant, by environment then name, with the rollout ``scopes``
    it lacks: a scope is lacking while it is on record as not switched ON, or, once the
    rollout is enforced or finished, as a missing required scope."""
    rows = await session.execute(
        select(
            Customer.id, Customer.kvk, Customer.name, Customer.environment,
            Customer.account_manager, Customer.rollout_missing_scopes, Customer.missing_scopes,
            Customer.rollout_asked_at,
        )
        .where(Customer.tenant_id.is_not(None))
        .order_by(Customer.environment, Customer.name, Customer.kvk)
    )  # fmt: skip
    wanted = set(scopes)
    found = []
    for cid, kvk, name, env, manager, rollout_missing, missing, asked_at in rows:
        off = set(rollout_missing.split()) | set(missing.split())
        lacking = tuple(s for s in scopes if s in off and s in wanted)
        found.append(Standing(cid, kvk, name, env, manager, lacking, asked_at is not None))
    return found


def lacking(customers: Sequence[Standing]) -> list[Standing]:
    """The customers that have not switched the rollout scopes ON (or are not known to)."""
    return [c for c in customers if not c.switched_on]


# --- tracker records: one kv row per environment and rollout --------------------------------


@dataclass(frozen=True)
class TrackerRecord:
    key: str
    environment: str
    scopes: tuple[str, ...]
    notification_id: int  # the outbox row of the tracker message
    shown: str  # the progress the message shows now ("6/20")
    reminded: tuple[str, ...]  # reminders sent ("7d", "1d")
    final: bool
    raw: str  # the stored value, for a conditional update

    def with_(self, **changes: Any) -> str:
        value = {
            "environment": self.environment,
            "scopes": list(self.scopes),
            "notification_id": self.notification_id,
            "shown": self.shown,
            "reminded": list(self.reminded),
            "final": self.final,
        }
        value.update({k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()})
        return json.dumps(value, sort_keys=True)


def tracker_value(environment: str, scopes: Sequence[str], notification_id: int, shown: str) -> str:
    return json.dumps(
        {"environment": environment, "scopes": list(scopes), "notification_id": notification_id,
         "shown": shown, "reminded": [], "final": False},
        sort_keys=True,
    )  # fmt: skip


async def trackers(*, session: AsyncSession) -> list[TrackerRecord]:
    """Every tracker message on record, oldest first."""
    rows = await session.execute(
        select(KeyValue.key, KeyValue.value)
        .where(KeyValue.key.startswith(TRACKER_PREFIX, autoescape=True))
        .order_by(KeyValue.updated_at, KeyValue.key)
    )
    found = []
    for key, raw in rows:
        value = json.loads(raw or "{}")
        found.append(
            TrackerRecord(
                key, value["environment"], tuple(value["scopes"]), int(value["notification_id"]),
                value.get("shown", ""), tuple(value.get("reminded", ())),
                bool(value.get("final")), raw or "",
            )
        )  # fmt: skip
    return found


async def replace_tracker(
    record: TrackerRecord, new: str, *, session: AsyncSession, now: datetime
) -> bool:
    """Store ``new`` for the tracker unless another replica changed it first (a conditional
    UPDATE on the old value): True for the one caller whose update matched."""
    result = await session.execute(
        update(KeyValue)
        .where(KeyValue.key == record.key, KeyValue.value == record.raw)
        .values(value=new, updated_at=now)
    )
    return affected_rows(result) == 1
