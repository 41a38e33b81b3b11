"""alert holds and peer looks: one cause, one page, on any fleet (#23)

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-03 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0006"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_holds",
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("cause_key", sa.String(length=80), nullable=False),
        sa.Column("held_at", storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("due_at", storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_alert_holds_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_alert_holds")),
    )
    op.create_index(op.f("ix_alert_holds_due_at"), "alert_holds", ["due_at"], unique=False)
    op.create_table(
        "peer_looks",
        sa.Column("cause_key", sa.String(length=80), nullable=False),
        sa.Column("looked_at", storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cause_key", name=op.f("pk_peer_looks")),
    )


def downgrade() -> None:
    op.drop_table("peer_looks")
    op.drop_index(op.f("ix_alert_holds_due_at"), table_name="alert_holds")
    op.drop_table("alert_holds")
