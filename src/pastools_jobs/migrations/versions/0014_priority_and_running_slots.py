"""a job's priority, and the running slots that limit a project's running jobs

Revision ID: 0014
Revises: 0013
Create Date: 2027-01-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=True))
    op.create_table(
        "running_slots",
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=200), nullable=False),
        sa.Column("running", sa.Boolean(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "run_id"),
    )
    op.create_index("ix_running_slots_project", "running_slots", ["project_id", "running", "since"])


def downgrade() -> None:
    op.drop_index("ix_running_slots_project", table_name="running_slots")
    op.drop_table("running_slots")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("priority")
