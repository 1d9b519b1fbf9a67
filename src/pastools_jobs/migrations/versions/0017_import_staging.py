"""import staging: projects' declared column types, and the staging tables of replace
and insert-only imports

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("projects", sa.Column("column_types", sa.JSON(), nullable=True))
    op.create_table(
        "import_stagings",
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("project_id", sa.String(length=200), nullable=False),
        sa.Column("swapped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_table(
        "staged_records",
        sa.Column("job_id", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("data", _DOCUMENT, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_stagings.job_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("staged_records")
    op.drop_table("import_stagings")
    op.drop_column("projects", "column_types")
