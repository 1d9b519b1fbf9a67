"""The platform's tables (SQLAlchemy 2.0 typed models): jobs, their earlier attempts, counts,
projects and records, tokens, the mirror's lease, webhooks and their deliveries, jobs' logs,
holds, running slots and data tests' outcomes."""

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
"""JSON that PostgreSQL can index and query by content (JSONB); text on SQLite."""


class Job(Base):
    """One job: its current attempt, mirrored from the Temporal workflow of the same id."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    type: Mapped[str] = mapped_column(String(50))
    project_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    run_id: Mapped[str | None] = mapped_column(String(64))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_message: Mapped[str | None] = mapped_column(Text)
    checkpoint: Mapped[Any] = mapped_column(JSON, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[Any] = mapped_column(JSON, nullable=True)
    run_timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    submitter_scope: Mapped[str | None] = mapped_column(String(200))
    """The one project whoever submitted (or last retried) the job sees; None for one who
    sees all. The job's work reads no other project's data on their behalf."""
    schedule_id: Mapped[str | None] = mapped_column(String(100))
    """The project's schedule whose run this is (`schedules/`); None for a job submitted."""
    priority: Mapped[int | None] = mapped_column(Integer)
    """Temporal's priority key given at submission (1 first … 5 last); None: Temporal's
    default (3)."""
    cancel_requested_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    """When the job's work stopped for a pause (or, held at submission, when it was
    submitted); None while it is not paused, and once it ends."""
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    past_attempts: Mapped[list["JobAttempt"]] = relationship(
        back_populates="job",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="JobAttempt.attempt",
    )

    __table_args__ = (
        Index("ix_jobs_created", "created_at", "id"),
        Index("ix_jobs_status_created", "status", "created_at", "id"),
        Index("ix_jobs_project_created", "project_id", "created_at", "id"),
        # Cover the statistics' GROUP BY status, type: answered from the index alone.
        Index("ix_jobs_project_status_type", "project_id", "status", "type"),
        Index("ix_jobs_status_type", "status", "type"),
        Index("ix_jobs_type_created", "type", "created_at", "id"),
        Index("ix_jobs_status_completed", "status", "completed_at"),
        Index("ix_jobs_updated", "updated_at"),
        Index("ix_jobs_paused", "paused_at"),
        # One job per key and project; rows without a key (NULL) never collide.
        Index("ux_jobs_project_idempotency_key", "project_id", "idempotency_key", unique=True),
        # Parameter filters (`param_filters.py`): containment, any parameter, one index.
        Index(
            "ix_jobs_params",
            "params",
            postgresql_using="gin",
            postgresql_ops={"params": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class JobHold(Base):
    """A project or job type whose new and queued jobs wait, paused, until it is resumed
    (`pastools_jobs.holds`)."""

    __tablename__ = "job_holds"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    """`project` or `type`."""
    target: Mapped[str] = mapped_column(String(200), primary_key=True)
    """The project id or the job type."""
    running: Mapped[str] = mapped_column(String(20))
    """What the hold did to running jobs: `finish` (left them) or `pause`."""
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime]


class RunningSlot(Base):
    """A job run holding one of its project's running slots, or waiting for one
    (`activities/slots.py`): the per-project limit on running jobs holds across all workers
    because every claim counts these rows in one transaction."""

    __tablename__ = "running_slots"

    job_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(200))
    running: Mapped[bool] = mapped_column(Boolean)
    """True: holds a slot; False: waits for one, in the order of `since`."""
    since: Mapped[datetime]

    __table_args__ = (Index("ix_running_slots_project", "project_id", "running", "since"),)


class JobCount(Base):
    """How many jobs each (project, status, type) holds: statistics without a scan of jobs.

    Kept in the same transaction as every insert, delete and status change of a job
    (`pastools_jobs.counts`), so it is exact; `count_drift` checks that it is.
    """

    __tablename__ = "job_counts"

    project_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    type: Mapped[str] = mapped_column(String(50), primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)


class JobAttempt(Base):
    """A finished earlier attempt of a job, kept readable after a retry."""

    __tablename__ = "job_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[Any] = mapped_column(JSON, nullable=True)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]

    job: Mapped[Job] = relationship(back_populates="past_attempts", lazy="raise")

    __table_args__ = (
        Index("ux_job_attempts_job_attempt", "job_id", "attempt", unique=True),
        Index("ix_job_attempts_run", "run_id"),
    )


class Project(Base):
    """A project's dataset settings: its JSON Schema and its test suite."""

    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(500))
    json_schema: Mapped[Any] = mapped_column(JSON, nullable=True)
    test_suite: Mapped[Any] = mapped_column(JSON, nullable=True)
    column_types: Mapped[Any] = mapped_column(JSON, nullable=True)
    """{column: type} that imports coerce to, unless an import declares its own."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Record(Base):
    """One record of a project's dataset: a key and a JSON document."""

    __tablename__ = "records"

    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    data: Mapped[Any] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime]


class ImportStaging(Base):
    """A `replace` or `insert-only` import's records on their way in: loaded batch by
    batch, moved into `records` in one transaction at the end. `swapped_at` says that
    move happened, so a retry after it does not make it again."""

    __tablename__ = "import_stagings"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(String(200))
    """The job's run that staged: a retry of the job (a new run) starts afresh."""
    project_id: Mapped[str] = mapped_column(String(200))
    swapped_at: Mapped[datetime | None]
    written: Mapped[int] = mapped_column(Integer, default=0)
    """Records the move wrote."""
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    """Rows of an insert-only import whose key existed already."""


class StagedRecord(Base):
    __tablename__ = "staged_records"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("import_stagings.job_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    line: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[Any] = mapped_column(JSONDocument)


class ApiToken(Base):
    """A bearer token: only the SHA-256 of its secret is kept, so a leaked table grants nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    project_id: Mapped[str | None] = mapped_column(String(200))
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class MirrorLease(Base):
    """Which replica's mirror works (`mirror/lease.py`); one row per mirrored task queue."""

    __tablename__ = "mirror_lease"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class AuditEntry(Base):
    """One operator action: who took it, through what, on which job or project, and why.

    Written in the same transaction as the action it records; the API never updates or
    deletes an entry (only the retention of `PASTOOLS_AUDIT_RETENTION_DAYS` removes old
    ones), and cleaning up a job keeps its entries."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(50))
    actor_kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(200))
    actor_name: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    project_id: Mapped[str | None] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[Any] = mapped_column(JSON, nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_audit_entries_project", "project_id", "id"),
        Index("ix_audit_entries_job", "job_id", "id"),
        Index("ix_audit_entries_at", "at"),
    )


class Webhook(Base):
    """Where a project's job events are sent (`pastools_jobs.webhooks`). The secret is
    kept as given at creation, since signing needs it; the API never shows it again."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(20))
    secret: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    # The outbox looks a project's webhooks up at every job's end: one indexed read.
    __table_args__ = (Index("ix_webhooks_project", "project_id"),)


class WebhookDelivery(Base):
    """One event for one webhook: its frozen body and the log of its requests. The id is
    the `webhook-id` header, the same on every attempt, by which receivers de-duplicate."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(50))
    job_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    """The exact body sent, fixed when the event happened: every attempt sends these bytes."""
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    """When its workflow was started; None: the mirror's leader has yet to start it."""
    last_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_deliveries_undispatched", "dispatched_at", "created_at"),
        Index("ix_webhook_deliveries_log", "webhook_id", "created_at", "id"),
    )


class JobLogLine(Base):
    """One line a job's activity logged (`pastools_jobs.job_logs`). `seq` counts every line
    of the job, kept or not: only the newest lines are kept, so the lines dropped are the
    seqs below the first one kept. Removed with the job (cleanup, bulk delete)."""

    __tablename__ = "job_logs"

    job_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    """The activity's attempt within its run: 2 and up after Temporal retried it."""
    run_id: Mapped[str] = mapped_column(String(64))


class DataTestOutcome(Base):
    """One data test's outcome in one test run, written when the run has judged its tests
    (`datasets/outcomes.py`): the test's history across runs. Kept apart from the
    jobs table, so the history outlives the jobs' cleanup."""

    __tablename__ = "data_test_outcomes"

    job_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    test_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    ran_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))
    """`pass`, `warn` or `error`."""
    failing: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    severity: Mapped[str] = mapped_column(String(10))
    warn_if: Mapped[str] = mapped_column(String(50))
    error_if: Mapped[str] = mapped_column(String(50))

    __table_args__ = (
        Index("ix_data_test_outcomes_history", "project_id", "test_name", "ran_at", "job_id"),
    )
