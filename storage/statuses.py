"""The words stored in status and kind columns, as enums (``StrEnum``: each member is the
string stored, so it compares and assigns as one)."""

from __future__ import annotations

from enum import StrEnum


class InvitationStatus(StrEnum):
    OPEN = "open"  # the hand-off is out, not approved yet (only the newest one per customer)
    APPROVED = "approved"  # a check found every required scope granted
    CANCELLED = "cancelled"  # a newer invitation for the same customer replaced it


PENDING = "pending"  # the status of a claimed row (storage.claims) that waits for its sender


class NotificationStatus(StrEnum):
    PENDING = PENDING  # waiting for the sender (or for its target to be sent)
    SENT = "sent"
    FAILED = "failed"  # given up on
    SUPERSEDED = "superseded"  # an older update of a message a newer update replaced


class PagerEventStatus(StrEnum):
    PENDING = PENDING  # waiting for the sender (or for an earlier event of its incident)
    SENT = "sent"  # PagerDuty answered 202
    FAILED = "failed"  # PagerDuty refused it for good (400, another 4xx): never retried


class IncidentKind(StrEnum):
    CUSTOMER = "customer"
    UPSTREAM = "upstream"  # Visma Connect, the Brincr API or the app's own credentials
    GROUP = "group"  # several customers of one environment broken for one cause
