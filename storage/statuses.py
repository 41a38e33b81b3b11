"""The words stored in status and kind columns, as enums (``StrEnum``: each member is the
string stored, so it compares and assigns as one)."""

from __future__ import annotations

from enum import StrEnum


class InvitationStatus(StrEnum):
    OPEN = "open"  # the hand-off is out, not approved yet (only the newest one per customer)
    APPROVED = "approved"  # a check found every required scope granted
    CANCELLED = "cancelled"  # a newer invitation for the same customer replaced it


class NotificationStatus(StrEnum):
    PENDING = "pending"  # waiting for the sender (or for its target to be sent)
    SENT = "sent"
    FAILED = "failed"  # given up on
    SUPERSEDED = "superseded"  # an older update of a message a newer update replaced


class IncidentKind(StrEnum):
    CUSTOMER = "customer"
    UPSTREAM = "upstream"  # Visma Connect, the Brincr API or the app's own credentials
