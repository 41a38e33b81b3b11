"""The I/O-free core of ``POST /webhooks/visma``: Visma Webhook Dispatcher deliveries.

docs/domain.md, Visma webhooks: the signature is ``X-VWD-Signature-V1`` =
base64(HMAC-SHA256(secret, raw body)); metadata arrives in ``x-vwd-*`` headers. The body
format is not published, so headers win and the body is only a fallback, read leniently (any
key spelling, one nested level such as ``data``). Verify the signature on the raw bytes
*before* parsing.
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
from enum import StrEnum
from typing import Any

from bot.core.errors import UserError
from bot.domain import normalize_tenant_id

SIGNATURE_HEADER = "x-vwd-signature-v1"
MAX_NOTIFICATION_ID = 200  # it becomes an idempotency key in storage

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
    """The delivery described by ``headers`` (any case) and, where they are silent, the body.

    Raises :class:`UserError` when neither names the notification id or the event.
    """
    lowered = {key.lower(): value.strip() for key, value in headers.items() if value.strip()}
    payload = _json_object(body)

    def field(header: str) -> str | None:
        return lowered.get(header) or _body_value(payload, _FIELDS[header])

    notification_id = _required(
        field("x-vwd-notification-id"), "notification id", "x-vwd-notification-id"
    )
    if len(notification_id) > MAX_NOTIFICATION_ID:
        raise UserError(f"the notification id is longer than {MAX_NOTIFICATION_ID} characters")
    event = _required(field("x-vwd-event-id"), "event type", "x-vwd-event-id")
    tenant = field("x-vwd-tenant-id")
    return Delivery(
        notification_id=notification_id,
        event=event,
        kind=event_kind(event),
        tenant_id=normalize_tenant_id(tenant) if tenant and len(tenant) < 64 else None,
        application_id=field("x-vwd-application-id"),
        timestamp=field("x-vwd-notification-timestamp"),
        body=body.decode("utf-8", errors="replace"),
        payload=payload,
    )


def event_kind(event: str) -> WebhookEventKind:
    """``TenantApplicationAdded``, ``tenant.application.added``, ... → ADDED; unknown → OTHER."""
    squashed = _squash(event)
    for kind in (WebhookEventKind.ADDED, WebhookEventKind.DELETED):
        if squashed == _squash(kind.value):
            return kind
    return WebhookEventKind.OTHER


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
