"""webhook body hashes kept beyond their rows (replays of bodies without a timestamp)

Revision ID: 0004
Revises: 0005
Create Date: 2026-12-03 06:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0004"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "webhook_body_hashes",
        sa.Column("body_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("first_seen_at", storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("body_hash", name=op.f("pk_webhook_body_hashes")),
    )
    # Bodies received so far: whether each carried its own timestamp is not recorded, so
    # every stored hash is kept (a few per customer).
    events = sa.table(
        "webhook_events",
        sa.column("body_hash", sa.String(64)),
        sa.column("received_at", storage.types.UtcDateTime(timezone=True)),
    )
    rows = op.get_bind().execute(
        sa.select(events.c.body_hash, events.c.received_at).where(events.c.body_hash.is_not(None))
    )
    hashes = [{"body_hash": bytes.fromhex(h), "first_seen_at": at} for h, at in rows]
    if hashes:
        op.bulk_insert(table, hashes)


def downgrade() -> None:
    op.drop_table("webhook_body_hashes")
