"""staging runs: the run of a job that staged, so that a retry of the job starts afresh

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("import_stagings", sa.Column("run_id", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_stagings") as table:
        table.drop_column("run_id")
