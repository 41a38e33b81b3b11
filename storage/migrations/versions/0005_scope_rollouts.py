"""scope rollouts: the rollout scopes each customer has not switched ON yet, and when a token
request last asked for them

Revision ID: 0005
Revises: 0006
Create Date: 2026-12-03 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0005"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("rollout_missing_scopes", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("rollout_asked_at", storage.types.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("rollout_asked_at")
        batch.drop_column("rollout_missing_scopes")
