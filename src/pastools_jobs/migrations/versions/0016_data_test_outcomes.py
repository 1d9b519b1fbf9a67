"""data_test_outcomes: each data test's outcome per test run, its history across runs

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_test_outcomes",
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("test_name", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("failing", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("warn_if", sa.String(length=50), nullable=False),
        sa.Column("error_if", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "test_name"),
    )
    op.create_index(
        "ix_data_test_outcomes_history",
        "data_test_outcomes",
        ["project_id", "test_name", "ran_at", "job_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_data_test_outcomes_history", table_name="data_test_outcomes")
    op.drop_table("data_test_outcomes")
