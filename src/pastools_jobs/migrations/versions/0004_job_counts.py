"""job counts per project, status and type

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_counts",
        sa.Column("project_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "status", "type"),
    )
    # Writers that run during the migration would be missed: the platform migrates at
    # start, before the API and the worker write; `rebuild_counts` repairs any gap.
    op.execute(
        "INSERT INTO job_counts (project_id, status, type, n) "
        "SELECT project_id, status, type, count(*) FROM jobs GROUP BY project_id, status, type"
    )


def downgrade() -> None:
    op.drop_table("job_counts")
