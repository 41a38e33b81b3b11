"""PagerDuty Events API v2: incidents mirrored as trigger / acknowledge / resolve events.

Events are rows first (``storage.models.PagerEvent``), like Slack messages in the outbox (outbound
messages are rows first): :class:`Pager` writes them in the transaction that opens, acknowledges or
resolves an incident; :class:`PagerDutySender` posts them, one POST each, and records the outcome. A
unique (``dedup_key``, ``action``) makes each incident trigger, acknowledge and resolve at most
once, whichever replica saw the change.

The Events API (https://developer.pagerduty.com/docs/events-api-v2/overview/, docs/domain.md,
PagerDuty): ``POST {PAGERDUTY_EVENTS_URL}`` with the routing key in the body, no auth header.

- 202: accepted, done. The event's ``dedup_key`` ties trigger, acknowledge and resolve.
- 400: the event is invalid: never retried; the row fails and one ERROR line says why.
- 429: too many events for this routing key: retried after ``Retry-After`` (a minute when it
  gives none), not counted as an attempt; the tick stops, so other events wait too.
- 5xx, network errors, timeouts: retried with backoff (2 s doubling to 10 minutes, jittered)
  until PagerDuty takes the event; nothing is given up for lasting long.
- other 4xx (a wrong URL, a payload too large): not retried, like a 400.

The loop (claim with a lease, send, classify, reschedule) is :mod:`bot.sending`'s, shared
with the Slack outbox; :func:`classify` is PagerDuty's part.

Events of one incident go in order: an event waits while an earlier one with the same
``dedup_key`` is still pending, so an acknowledge never overtakes its trigger. A trigger is
never held for Slack: the link back to the alert message is added when its ``ts`` is known.

The remaining window for a duplicate is the outbox's: a worker killed after PagerDuty accepted
an event but before ``sent`` was committed sends it again after ``claim_for``. PagerDuty
deduplicates a repeated trigger or resolve on the same ``dedup_key``, so that is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clients.pagerduty import Answer, EventsClient
from bot.core.clock import utcnow
from bot.core.metrics import pager_answered
from bot.domain import Environment
from bot.domain.retrying import Backoff
from bot.sending import ClaimedRowSender, Failure, Step
from bot.settings import Settings
from storage import pager
from storage.db import Database
from storage.models import Customer, Incident, Notification, PagerEvent
from storage.statuses import PagerEventStatus as Status

log = logging.getLogger(__name__)

SUMMARY_MAX = 1024  # PagerDuty's limit for payload.summary
RATE_LIMIT_WAIT = 60.0  # seconds, when PagerDuty's 429 says no Retry-After


# --------------------------------------------------------------------------- what is sent


def dedup_key(incident: Incident) -> str:
    """Stable per incident; a new incident of the same customer gets a new key."""
    return f"brincr-bot/incident/{incident.id}/{int(incident.opened_at.timestamp())}"


def incident_environment(incident: Incident, customer: Customer | None) -> str:
    """The environment an incident belongs to (upstream and group keys name it)."""
    if customer is not None:
        return customer.environment
    names = {e.value for e in Environment}
    parts = (incident.upstream_key or "").split(":")
    return next((p for p in parts if p in names), Environment.PRODUCTION.value)


def _cause(incident: Incident, customer: Customer | None) -> str:
    if customer is not None and incident.state == "scopes_missing" and customer.missing_scopes:
        return "missing scopes " + ", ".join(customer.missing_scopes.split())
    return incident.reason or incident.state


def summary(incident: Incident, customer: Customer | None) -> str:
    """One line naming who (customer and KvK, or the upstream/group), where and what broke."""
    env = incident_environment(incident, customer)
    if customer is not None:
        who = f"{customer.name} (KvK {customer.kvk}, {env})"
        text = f"Brincr connection {incident.state}: {who}: {_cause(incident, customer)}"
    elif incident.kind == "group":
        text = (
            f"{incident.affected_count} {env} customers {incident.state}: "
            f"{incident.reason or 'same cause'}"
        )
    else:
        text = (
            f"{incident.upstream_key} failing ({env}): {incident.affected_count} customers "
            f"affected: {incident.reason or 'no details'}"
        )
    return text[:SUMMARY_MAX]


def severity(incident: Incident, environment: str) -> str:
    if environment != Environment.PRODUCTION:
        return "warning"
    return "critical" if incident.kind in ("upstream", "group") else "error"


def trigger_payload(incident: Incident, customer: Customer | None) -> dict[str, Any]:
    env = incident_environment(incident, customer)
    details: dict[str, Any] = {"incident": incident.id, "state": incident.state, "env": env}
    if customer is not None:
        details.update(kvk=customer.kvk, tenant_id=customer.tenant_id)
    else:
        details["affected_customers"] = incident.affected_count
    return {
        "summary": summary(incident, customer),
        "source": f"brincr-bot ({env})",
        "severity": severity(incident, env),
        "timestamp": incident.opened_at.isoformat(),
        "component": "visma-connect" if incident.kind == "upstream" else "brincr-connection",
        "group": env,
        "class": incident.state,
        "custom_details": details,
    }


def slack_link(channel: str, ts: str) -> str:
    """A link to a Slack message (Slack redirects it into the workspace)."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


# --------------------------------------------------------------------------- writing rows


class Pager:
    """Writes PagerDuty events for incident changes, in the caller's transaction.

    Nothing is written when PagerDuty is not configured or the incident's environment does
    not page (PAGERDUTY_ENVIRONMENTS); acknowledge and resolve only follow a trigger.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def trigger(
        self, session: AsyncSession, incident: Incident, customer: Customer | None
    ) -> None:
        if not self.settings.pages(incident_environment(incident, customer)):
            return
        await self._add(
            session, incident, "trigger", {"payload": trigger_payload(incident, customer)}
        )

    async def acknowledge(self, session: AsyncSession, incident: Incident) -> None:
        if await self._triggered(session, incident):
            await self._add(session, incident, "acknowledge", {})

    async def resolve(self, session: AsyncSession, incident: Incident) -> None:
        if await self._triggered(session, incident):
            await self._add(session, incident, "resolve", {})

    async def _triggered(self, session: AsyncSession, incident: Incident) -> bool:
        return await pager.has_event(dedup_key(incident), "trigger", session=session)

    async def _add(
        self, session: AsyncSession, incident: Incident, action: str, body: dict[str, Any]
    ) -> None:
        key = dedup_key(incident)
        if await pager.has_event(key, action, session=session):
            return  # each incident triggers, acknowledges and resolves once
        now = utcnow()
        event = PagerEvent(
            dedup_key=key, action=action, incident_id=incident.id,
            alert_notification_id=incident.root_notification_id, payload=body,
            created_at=now, status=Status.PENDING, attempts=0, next_attempt_at=now,
        )  # fmt: skip
        try:
            async with session.begin_nested():  # a race lost must not roll back the caller
                session.add(event)
                await session.flush()
        except IntegrityError:
            return  # another replica wrote this event first
        log.info("pagerduty %s queued for incident %s", action, incident.id)


# --------------------------------------------------------------------------- the sender


def classify(answer: Answer) -> Failure | None:
    """None when PagerDuty accepted the event; else what to do about it (module docstring)."""
    if answer.accepted:
        return None
    if answer.rate_limited:
        wait = RATE_LIMIT_WAIT if answer.retry_after is None else max(answer.retry_after, 1.0)
        return Failure(answer.error, retry_after=wait, status=429)
    if answer.permanent:  # 400, another 4xx
        return Failure(answer.error, permanent=True, status=answer.status)
    return Failure(answer.error, status=answer.status, transient=True)


class PagerDutySender(ClaimedRowSender[PagerEvent]):
    """Sends due :class:`PagerEvent` rows, each once (the module docstring and
    :mod:`bot.sending`, whose loop it is)."""

    model = PagerEvent
    backoff = Backoff(first=timedelta(seconds=2), cap=timedelta(minutes=10))

    def __init__(
        self,
        db: Database,
        client: EventsClient,
        *,
        worker_id: str,
        poll_interval: float = 1.0,
        batch: int = 20,
        claim_for: timedelta = timedelta(minutes=2),
    ) -> None:
        super().__init__(
            db, name="pagerduty", worker_id=worker_id, poll_interval=poll_interval,
            batch=batch, claim_for=claim_for, log=log,
        )  # fmt: skip
        self.client = client

    async def _due_ids(self, now: datetime) -> list[int]:
        async with self._db.transaction() as session:
            return await pager.due_ids(now, session=session, limit=self._batch)

    async def _deliver(self, event_id: int) -> Step:
        claimed = await self._claim_with_link(event_id)
        if claimed is None:
            return Step.SKIPPED
        event, body = claimed
        failure = classify(await self.client.send(event.action, event.dedup_key, body))
        if failure is not None:
            return await self._record_failure(event, failure)
        await self._set_row(event.id, status=Status.SENT, sent_at=utcnow(), last_error=None)
        pager_answered(True)
        log.info("pagerduty %s sent for incident %s", event.action, event.incident_id)
        return Step.SENT

    async def _claim_with_link(self, event_id: int) -> tuple[PagerEvent, dict[str, Any]] | None:
        """Claim the event; its body, with a link to the Slack alert once that is posted."""
        async with self._db.transaction() as session:
            event = await self._claim(event_id, session)
            if event is None:
                return None
            body = dict(event.payload)
            if event.action == "trigger" and event.alert_notification_id is not None:
                alert = await session.get(Notification, event.alert_notification_id)
                if alert is not None and alert.ts:
                    channel = alert.channel_posted or alert.channel_id
                    link = {"href": slack_link(channel, alert.ts), "text": "Slack alert"}
                    body["links"] = [link]
            return event, body

    def _note_failure(
        self, event: PagerEvent, failure: Failure, *, given_up: bool, words: str
    ) -> None:
        pager_answered(False, given_up=given_up)
        if given_up:
            log.error(
                "PagerDuty refused the %s of incident %s (dedup_key %s): %s; not retried",
                event.action, event.incident_id, event.dedup_key, failure.error,
            )  # fmt: skip
        else:
            log.warning(
                "pagerduty %s for incident %s failed (%s); %s",
                event.action, event.incident_id, failure.error, words,
            )  # fmt: skip
