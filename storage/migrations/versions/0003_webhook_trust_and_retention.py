"""webhook trust (body hash, claims, attempts), manual-check throttle, retention indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 04:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("claimed_until", storage.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.create_index("ix_webhook_events_body_hash", "webhook_events", ["body_hash"], unique=True)
    op.create_index(
        "ix_webhook_events_unprocessed", "webhook_events", ["processed_at", "claimed_until"]
    )
    op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column(
                "last_manual_check_at", storage.types.UtcDateTime(timezone=True), nullable=True
            )
        )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("last_manual_check_at")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_index("ix_webhook_events_unprocessed", table_name="webhook_events")
    op.drop_index("ix_webhook_events_body_hash", table_name="webhook_events")
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_column("claimed_by")
        batch.drop_column("claimed_until")
        batch.drop_column("attempts")
        batch.drop_column("body_hash")
