"""The I/O-free core of ``POST /webhooks/visma``: Visma Webhook Dispatcher deliveries.

docs/domain.md, Visma webhooks: the signature is ``X-VWD-Signature-V1`` =
base64(HMAC-SHA256(secret, raw body)); metadata arrives in ``x-vwd-*`` headers, which the
signature does *not* cover. So the signed body wins: a value read from the body (leniently: any
key spelling, one nested level such as ``data``) is the value, a header only fills in what the
body does not say, and a header that contradicts the body refuses the delivery. Verify the
signature on the raw bytes *before* parsing. Values longer than their storage columns are
refused here, at the edge.

Freshness (:func:`staleness`): a notification timestamp older than ``MAX_AGE`` or more than
``MAX_SKEW`` in the future makes the delivery stale (dropped, not processed). Replays of a
body already seen are recognised by :attr:`Delivery.body_hash` (bot.onboarding.tenant_events).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.core.errors import UserError
from bot.domain import normalize_tenant_id

SIGNATURE_HEADER = "x-vwd-signature-v1"
MAX_NOTIFICATION_ID = 100  # webhook_events.notification_id is String(100): the idempotency key
MAX_EVENT = 100  # webhook_events.event
MAX_APPLICATION_ID = 100  # webhook_events.application_id
MAX_TIMESTAMP = 64
MAX_AGE = timedelta(hours=24)  # an older notification is stale: dropped with a 2xx
MAX_SKEW = timedelta(minutes=5)  # a notification from further in the future is dropped too

# Header → the body keys (compared without case and separators) that may carry the same value.
_FIELDS: dict[str, tuple[str, ...]] = {
    "x-vwd-event-id": ("eventid", "eventtype", "eventname", "event", "type"),
    "x-vwd-tenant-id": ("tenantid", "tenant"),
    "x-vwd-application-id": ("applicationid", "appid", "application"),
    "x-vwd-notification-id": ("notificationid", "deliveryid"),
    "x-vwd-notification-timestamp": ("notificationtimestamp", "timestamp", "createdat", "time"),
}


class WebhookEventKind(StrEnum):
    ADDED = "tenant_application_added"
    DELETED = "tenant_application_deleted"
    OTHER = "other"


@dataclass(frozen=True)
class Delivery:
    notification_id: str
    event: str  # as sent, e.g. "tenant_application_added"
    kind: WebhookEventKind
    tenant_id: str | None  # canonical UUID, or None when absent or not a UUID
    application_id: str | None
    timestamp: str | None  # as sent: the format is not documented
    body: str
    payload: dict[str, Any] | None  # the body when it is a JSON object
    body_hash: str = ""  # SHA-256 of the raw body, hex: a replayed body is recognised by it
    sent_at: datetime | None = None  # ``timestamp`` read as a moment, when it is one
    body_timestamp: bool = False  # the signed body names the timestamp (else: headers, none)


def verify_signature(secrets: Sequence[str], body: bytes, header: str | None) -> bool:
    """True if ``header`` is the signature of ``body`` under any of ``secrets``.

    Every secret is tried, so the time taken does not reveal which one matched. Empty secrets
    are ignored: anyone can compute an HMAC with an empty key.
    """
    if isinstance(secrets, str):
        raise TypeError("secrets must be a sequence of secrets, not one string")
    if header is None:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    matched = False
    for secret in secrets:
        if not secret:
            continue
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, given)
    return matched


def parse_delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The delivery the signed ``body`` describes, with ``headers`` (any case) filling in
    what the body does not say.

    Raises :class:`UserError` when neither names the notification id or the event, when a
    header contradicts the body, when a value is longer than its column, or when the
    notification timestamp cannot be read.
    """
    if b"\x00" in body:  # stored as text: PostgreSQL cannot hold a NUL
        raise UserError("the body contains a NUL character")
    lowered = {key.lower(): value.strip() for key, value in headers.items() if value.strip()}
    payload = _json_object(body)

    def field(header: str) -> str | None:
        signed = _body_value(payload, _FIELDS[header])
        given = lowered.get(header)
        if signed is not None and given is not None and not _same(header, signed, given):
            raise UserError(
                f"the `{header}` header contradicts the signed body",
                usage="the body is signed, the headers are not: send the values the body says",
            )
        return signed if signed is not None else given

    notification_id = _required(
        field("x-vwd-notification-id"), "notification id", "x-vwd-notification-id"
    )
    _fits(notification_id, MAX_NOTIFICATION_ID, "notification id")
    event = _required(field("x-vwd-event-id"), "event type", "x-vwd-event-id")
    _fits(event, MAX_EVENT, "event type")
    tenant = field("x-vwd-tenant-id")
    application_id = field("x-vwd-application-id")
    if application_id is not None:
        _fits(application_id, MAX_APPLICATION_ID, "application id")
    timestamp = field("x-vwd-notification-timestamp")
    sent_at = None
    if timestamp is not None:
        _fits(timestamp, MAX_TIMESTAMP, "notification timestamp")
        sent_at = parse_timestamp(timestamp)
        if sent_at is None:
            raise UserError("the notification timestamp is not a date and time")
    return Delivery(
        notification_id=notification_id,
        event=event,
        kind=event_kind(event),
        tenant_id=normalize_tenant_id(tenant) if tenant and len(tenant) < 64 else None,
        application_id=application_id,
        timestamp=timestamp,
        body=body.decode("utf-8", errors="replace"),
        payload=payload,
        body_hash=hashlib.sha256(body).hexdigest(),
        sent_at=sent_at,
        body_timestamp=_body_value(payload, _FIELDS["x-vwd-notification-timestamp"]) is not None,
    )


def staleness(delivery: Delivery, now: datetime) -> str | None:
    """Why the delivery is too old or too far in the future to act on; None when it is
    fresh or carries no timestamp (a replay of its body is then caught by its hash)."""
    if delivery.sent_at is None:
        return None
    if delivery.sent_at < now - MAX_AGE:
        return f"stale: notification timestamp older than {MAX_AGE.total_seconds() / 3600:.0f} h"
    if delivery.sent_at > now + MAX_SKEW:
        return "stale: notification timestamp in the future"
    return None


def parse_timestamp(text: str) -> datetime | None:
    """ISO 8601 (``Z`` or an offset; naive means UTC) or Unix seconds/milliseconds; None when
    it is neither."""
    value = text.strip()
    if re.fullmatch(r"\d{9,13}(\.\d+)?", value):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _same(header: str, signed: str, given: str) -> bool:
    if header == "x-vwd-event-id":
        return _squash(signed) == _squash(given)
    if header == "x-vwd-tenant-id":
        return _squash(signed) == _squash(given)
    if header == "x-vwd-notification-timestamp":
        a, b = parse_timestamp(signed), parse_timestamp(given)
        return a == b if a is not None and b is not None else signed == given
    return signed == given


def _fits(value: str, limit: int, what: str) -> None:
    if len(value) > limit:
        raise UserError(f"the {what} is longer than {limit} characters")
    if _CONTROL.search(value):  # a NUL would be a database error; none belongs in an id
        raise UserError(f"the {what} contains a control character")


def event_kind(event: str) -> WebhookEventKind:
    """``TenantApplicationAdded``, ``tenant.application.added``, ... → ADDED; unknown → OTHER."""
    squashed = _squash(event)
    for kind in (WebhookEventKind.ADDED, WebhookEventKind.DELETED):
        if squashed == _squash(kind.value):
            return kind
    return WebhookEventKind.OTHER


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _required(value: str | None, what: str, header: str) -> str:
    if value is None:
        raise UserError(
            f"the webhook delivery has no {what}",
            usage=f"send it in the `{header}` header (or in the JSON body)",
        )
    return value


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return value if isinstance(value, dict) else None


def _body_value(payload: dict[str, Any] | None, keys: tuple[str, ...]) -> str | None:
    """The first scalar under one of ``keys``: top level first, then nested objects."""
    if payload is None:
        return None
    for key in keys:
        for level in _levels(payload):
            for name, value in level.items():
                if _squash(name) == key and _is_scalar(value) and str(value).strip():
                    return str(value).strip()
    return None


def _levels(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield payload
    if isinstance(payload.get("data"), dict):
        yield payload["data"]
    for name, value in payload.items():
        if isinstance(value, dict) and name != "data":
            yield value


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)
