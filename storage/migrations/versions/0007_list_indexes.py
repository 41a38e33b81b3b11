"""indexes for `list` at 50,000 customers: a state's customers longest first, the snoozed

`fleet_page` read the whole fleet and sorted it by severity for every `/brincr list` (45 ms
at 50,000 customers, bench/cost_curve.py); it now reads each state's customers in order
from ``ix_customers_state_since_name`` with a LIMIT. The snoozed count on top of the list
scanned the table; ``ix_customers_snoozed_until`` holds only snoozed customers.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-03 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_customers_state_since_name", "customers", ["state", "state_since", "name"])
    op.create_index(
        "ix_customers_snoozed_until", "customers", ["snoozed_until"],
        postgresql_where=sa.text("snoozed_until IS NOT NULL"),
        sqlite_where=sa.text("snoozed_until IS NOT NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_customers_snoozed_until", table_name="customers")
    op.drop_index("ix_customers_state_since_name", table_name="customers")
