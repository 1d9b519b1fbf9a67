"""jobs are found by their parameters: JSONB and a GIN index on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

On PostgreSQL the column's type changes, which rewrites the jobs table under an
exclusive lock: a table of a million jobs takes some seconds (see the README's
upgrade notes). SQLite keeps its JSON text and needs nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE jobs ALTER COLUMN params TYPE jsonb USING params::jsonb")
    op.execute("CREATE INDEX ix_jobs_params ON jobs USING gin (params jsonb_path_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_jobs_params")
    op.execute("ALTER TABLE jobs ALTER COLUMN params TYPE json USING params::json")
