"""the fleet-wide claim budget: K workers catching up together claim what one would

Each worker paced only its own claims (at most 1.5 × its share of the fleet per scheduler
tick), so two `serve --role worker` replicas catching up after an import sent 3.05 × the
steady rate of token requests to Visma (bench/upstream_flatness.py --workers 2). The row of
``claim_budgets`` counts what every worker claimed in the current tick window; each claim
locks it and takes only what is left (``storage.scheduling.open_budget``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    budgets = op.create_table(
        "claim_budgets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("window_start", storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_claim_budgets")),
    )
    # The row every claim locks (a claim also inserts it when it is missing).
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    op.bulk_insert(budgets, [{"name": "checks", "window_start": epoch, "claimed": 0}])


def downgrade() -> None:
    op.drop_table("claim_budgets")
