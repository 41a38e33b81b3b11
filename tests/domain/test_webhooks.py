from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bot.core.errors import UserError
from bot.domain.visma_webhooks import (
    WebhookEventKind,
    event_kind,
    parse_delivery,
    staleness,
    verify_signature,
)

SECRET = "s3cret-current"
OLD_SECRET = "s3cret-previous"
TENANT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
BODY = json.dumps({"tenantId": TENANT, "applicationId": "app-1"}).encode()


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def headers(**overrides: str) -> dict[str, str]:
    base = {
        "X-VWD-Event-Id": "tenant_application_added",
        "X-VWD-Tenant-Id": TENANT,
        "X-VWD-Application-Id": "app-1",
        "X-VWD-Notification-Id": "n-42",
        "X-VWD-Notification-Timestamp": "2024-05-01T12:00:00Z",
    }
    base.update(overrides)
    return base


def test_a_correct_signature_verifies() -> None:
    assert verify_signature([SECRET], BODY, sign(SECRET, BODY))


def test_surrounding_whitespace_in_the_signature_is_tolerated() -> None:
    assert verify_signature([SECRET], BODY, f"  {sign(SECRET, BODY)}\n")


def test_a_signature_made_with_another_secret_is_refused() -> None:
    assert not verify_signature([SECRET], BODY, sign("someone-else", BODY))


@pytest.mark.parametrize("signer", [SECRET, OLD_SECRET])
def test_either_secret_verifies_during_rotation(signer: str) -> None:
    assert verify_signature([SECRET, OLD_SECRET], BODY, sign(signer, BODY))


def test_a_tampered_body_is_refused() -> None:
    signature = sign(SECRET, BODY)
    assert not verify_signature([SECRET], BODY.replace(b"app-1", b"app-2"), signature)


@pytest.mark.parametrize("header", ["not base64!", "abc", "%%%%", ""])
def test_a_header_that_is_not_base64_is_refused(header: str) -> None:
    assert not verify_signature([SECRET], BODY, header)


def test_a_missing_signature_is_refused() -> None:
    assert not verify_signature([SECRET], BODY, None)


def test_no_secrets_verify_nothing() -> None:
    assert not verify_signature([], BODY, sign(SECRET, BODY))
    assert not verify_signature([""], BODY, sign("", BODY))  # an empty key is no secret


def test_one_bare_secret_string_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        verify_signature(SECRET, BODY, sign(SECRET, BODY))


def test_a_delivery_is_read_from_its_headers() -> None:
    delivery = parse_delivery(headers(), b"")
    assert delivery.notification_id == "n-42"
    assert delivery.event == "tenant_application_added"
    assert delivery.kind is WebhookEventKind.ADDED
    assert delivery.tenant_id == TENANT
    assert delivery.application_id == "app-1"
    assert delivery.timestamp == "2024-05-01T12:00:00Z"
    assert delivery.payload is None


@pytest.mark.parametrize("transform", [str.lower, str.upper, lambda name: name])
def test_header_names_are_case_insensitive(transform: Callable[[str], str]) -> None:
    mixed = {transform(name): value for name, value in headers().items()}
    delivery = parse_delivery(mixed, b"")
    assert (delivery.notification_id, delivery.kind) == ("n-42", WebhookEventKind.ADDED)


def test_a_header_that_contradicts_the_signed_body_is_refused() -> None:
    body = json.dumps({"eventId": "tenant_application_deleted", "notificationId": "n-42"})
    with pytest.raises(UserError, match="x-vwd-event-id` header contradicts the signed body"):
        parse_delivery(headers(), body.encode())


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-VWD-Tenant-Id", "00000000-0000-4000-8000-000000000009"),
        ("X-VWD-Notification-Id", "fresh-id"),
        ("X-VWD-Application-Id", "app-2"),
        ("X-VWD-Notification-Timestamp", "2001-01-01T00:00:00Z"),
    ],
)
def test_any_rewritten_header_the_body_also_states_is_refused(header: str, value: str) -> None:
    body = json.dumps({
        "tenantId": TENANT, "applicationId": "app-1", "notificationId": "n-42",
        "eventType": "tenant_application_added", "timestamp": "2024-05-01T12:00:00Z",
    }).encode()  # fmt: skip
    assert parse_delivery(headers(), body).tenant_id == TENANT
    with pytest.raises(UserError, match="contradicts the signed body"):
        parse_delivery(headers(**{header: value}), body)


def test_headers_that_agree_with_the_body_in_another_spelling_are_accepted() -> None:
    body = json.dumps({"eventType": "TenantApplicationAdded", "tenantId": TENANT.upper()})
    delivery = parse_delivery(headers(), body.encode())
    assert (delivery.kind, delivery.tenant_id) == (WebhookEventKind.ADDED, TENANT)
    assert delivery.event == "TenantApplicationAdded"  # the signed spelling


def test_the_body_hash_identifies_the_raw_body() -> None:
    one = parse_delivery(headers(), BODY)
    again = parse_delivery(headers(**{"X-VWD-Notification-Id": "n-43"}), BODY)
    assert one.body_hash == again.body_hash == hashlib.sha256(BODY).hexdigest()


@pytest.mark.parametrize(
    ("timestamp", "stale"),
    [
        ("2001-01-01T00:00:00Z", "older than 24 h"),
        ("978307200", "older than 24 h"),
        ("2024-05-01T11:00:00+00:00", None),
        ("2024-05-01T12:04:00Z", None),
        ("2024-05-01T13:00:00Z", "in the future"),
        ("1714564800000", None),  # milliseconds: 2024-05-01T12:00:00Z
    ],
)
def test_notification_timestamps_outside_the_window_are_stale(
    timestamp: str, stale: str | None
) -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    delivery = parse_delivery(headers(**{"X-VWD-Notification-Timestamp": timestamp}), b"")
    reason = staleness(delivery, now)
    assert (reason is None) if stale is None else (reason is not None and stale in reason)


def test_an_unreadable_notification_timestamp_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="not a date and time"):
        parse_delivery(headers(**{"X-VWD-Notification-Timestamp": "yesterday"}), b"")


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ("tenant_application_added", WebhookEventKind.ADDED),
        ("TenantApplicationAdded", WebhookEventKind.ADDED),
        ("Tenant Application Added", WebhookEventKind.ADDED),
        ("tenant.application.added", WebhookEventKind.ADDED),
        ("TENANT-APPLICATION-ADDED", WebhookEventKind.ADDED),
        ("tenant_application_deleted", WebhookEventKind.DELETED),
        ("TenantApplicationDeleted", WebhookEventKind.DELETED),
        ("Tenant Application Deleted", WebhookEventKind.DELETED),
        ("tenant.application.deleted", WebhookEventKind.DELETED),
        ("tenant_application_updated", WebhookEventKind.OTHER),
        ("user_added", WebhookEventKind.OTHER),
    ],
)
def test_event_name_variants(event: str, kind: WebhookEventKind) -> None:
    assert event_kind(event) is kind
    delivery = parse_delivery(headers(**{"X-VWD-Event-Id": event}), b"")
    assert delivery.event == event
    assert delivery.kind is kind


def test_a_body_alone_is_enough() -> None:
    body = json.dumps(
        {
            "notification_id": "n-7",
            "eventType": "TenantApplicationDeleted",
            "somethingNew": [1, 2, 3],
            "data": {"tenant_id": TENANT.upper(), "applicationId": "app-9"},
            "timestamp": "2024-05-02T08:00:00Z",
        }
    ).encode()
    delivery = parse_delivery({"Content-Type": "application/json"}, body)
    assert delivery.notification_id == "n-7"
    assert delivery.kind is WebhookEventKind.DELETED
    assert delivery.tenant_id == TENANT
    assert delivery.application_id == "app-9"
    assert delivery.timestamp == "2024-05-02T08:00:00Z"
    assert delivery.payload is not None and delivery.payload["somethingNew"] == [1, 2, 3]
    assert delivery.body == body.decode()


def test_an_event_nested_as_an_object_is_found() -> None:
    body = json.dumps({"notificationId": "n-8", "event": {"type": "tenant.application.added"}})
    assert parse_delivery({}, body.encode()).kind is WebhookEventKind.ADDED


def test_a_body_that_is_not_json_is_kept_raw() -> None:
    delivery = parse_delivery(headers(), b"tenant added \xff")
    assert delivery.payload is None
    assert delivery.body.startswith("tenant added")
    assert delivery.kind is WebhookEventKind.ADDED


def test_a_json_body_that_is_not_an_object_has_no_payload() -> None:
    assert parse_delivery(headers(), b"[1, 2]").payload is None


def test_a_tenant_id_that_is_not_a_uuid_is_dropped() -> None:
    delivery = parse_delivery(headers(**{"X-VWD-Tenant-Id": "not-a-tenant"}), b"")
    assert delivery.tenant_id is None


def test_a_missing_notification_id_is_a_clear_error() -> None:
    without = {k: v for k, v in headers().items() if k != "X-VWD-Notification-Id"}
    with pytest.raises(UserError, match="no notification id") as caught:
        parse_delivery(without, b"{}")
    assert caught.value.usage and "x-vwd-notification-id" in caught.value.usage


def test_a_blank_notification_id_counts_as_missing() -> None:
    with pytest.raises(UserError, match="no notification id"):
        parse_delivery(headers(**{"X-VWD-Notification-Id": "  "}), b"not json")


def test_a_missing_event_is_a_clear_error() -> None:
    without = {k: v for k, v in headers().items() if k != "X-VWD-Event-Id"}
    with pytest.raises(UserError, match="no event type"):
        parse_delivery(without, json.dumps({"tenantId": TENANT}).encode())


@pytest.mark.parametrize("length", [101, 200, 500])
def test_a_notification_id_longer_than_its_column_is_refused(length: int) -> None:
    with pytest.raises(UserError, match="longer than 100 characters"):
        parse_delivery(headers(**{"X-VWD-Notification-Id": "n" * length}), b"")
    assert parse_delivery(headers(**{"X-VWD-Notification-Id": "n" * 100}), b"")


@pytest.mark.parametrize("header", ["X-VWD-Event-Id", "X-VWD-Application-Id"])
def test_event_and_application_ids_longer_than_their_columns_are_refused(header: str) -> None:
    with pytest.raises(UserError, match="longer than 100 characters"):
        parse_delivery(headers(**{header: "x" * 101}), b"")
