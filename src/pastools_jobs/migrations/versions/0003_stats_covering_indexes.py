"""indexes that cover the statistics queries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_project_status")
        batch_op.create_index(
            "ix_jobs_project_status_type", ["project_id", "status", "type"], unique=False
        )
        batch_op.create_index("ix_jobs_status_type", ["status", "type"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_status_type")
        batch_op.drop_index("ix_jobs_project_status_type")
        batch_op.create_index("ix_jobs_project_status", ["project_id", "status"], unique=False)
