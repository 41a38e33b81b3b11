"""Values of the onboarding feature shared by its service and its renderers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.core.errors import UserError
from bot.domain import Environment, parse_tenant_id

_ENVIRONMENTS = frozenset(e.value for e in Environment)


@dataclass(frozen=True)
class TenantApproval:
    """A tenant that approved the app, as carried by the "Link to customer…" button and the
    picker's private_metadata (with the channel message to update once it is linked)."""

    tenant_id: str
    environment: str | None
    channel_id: str | None = None
    message_ts: str | None = None

    def encode(self) -> str:
        values = {"t": self.tenant_id, "e": self.environment,
                  "c": self.channel_id, "ts": self.message_ts}  # fmt: skip
        return json.dumps({k: v for k, v in values.items() if v})

    @classmethod
    def decode(cls, text: str) -> TenantApproval:
        """The approval in ``text`` (UserError when it is not one: a forged or stale value)."""
        try:
            data = json.loads(text)
            tenant_id = parse_tenant_id(str(data["t"]))
        except (ValueError, KeyError, TypeError, UserError):
            raise UserError("That button no longer knows which tenant it was about.") from None
        env = data.get("e")
        return cls(
            tenant_id=tenant_id,
            environment=env if isinstance(env, str) and env in _ENVIRONMENTS else None,
            channel_id=_str_or_none(data.get("c")),
            message_ts=_str_or_none(data.get("ts")),
        )


def _str_or_none(value: object) -> str | None:
    return str(value)[:40] if isinstance(value, str) and value else None


@dataclass(frozen=True)
class LinkCandidate:
    """A customer without a tenant, offered in the picker."""

    kvk: str
    name: str
    environment: str
    invited_at: datetime | None  # its newest open invitation, if any
