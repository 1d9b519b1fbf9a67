"""Queries on the jobs table: lookups, filtered listing with cursors, statistics."""

import base64
import binascii
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from pastools_jobs.counts import count_change, counted, record_counts
from pastools_jobs.db.models import Job, JobAttempt, JobCount
from pastools_jobs.domain import TERMINAL_STATUSES, InvalidJobInput, JobNotFound, JobStatus


@dataclass(frozen=True)
class JobFilter:
    statuses: Sequence[JobStatus] = ()
    types: Sequence[str] = ()
    project_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    id_contains: str | None = None


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass
class JobStats:
    total: int = 0
    by_status: dict[str, int] = field(
        default_factory=lambda: {status.value: 0 for status in JobStatus}
    )
    by_type: dict[str, int] = field(default_factory=dict)


def get_job(session: Session, job_id: str, *, lock: bool = False) -> Job:
    query = select(Job).where(Job.id == job_id).options(selectinload(Job.past_attempts))
    if lock:
        query = query.with_for_update()
    job = session.scalar(query)
    if job is None:
        raise JobNotFound(job_id)
    return job


def find_by_idempotency_key(session: Session, project_id: str, key: str) -> Job | None:
    query = (
        select(Job)
        .where(Job.project_id == project_id, Job.idempotency_key == key)
        .options(selectinload(Job.past_attempts))
    )
    return session.scalar(query)


def list_jobs(session: Session, where: JobFilter, limit: int, cursor: str | None) -> JobPage:
    """Newest first; the cursor names the last row seen, so pages stay stable under inserts."""
    query = select(Job).where(*_conditions(where)).options(selectinload(Job.past_attempts))
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor)
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(created_at, job_id))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    jobs = list(session.scalars(query))
    if len(jobs) <= limit:
        return JobPage(jobs, None)
    last = jobs[limit - 1]
    return JobPage(jobs[:limit], encode_cursor(last.created_at, last.id))


def queued_job(
    job_id: str,
    job_type: str,
    project_id: str,
    params: dict[str, Any],
    created_at: datetime,
    *,
    run_id: str | None = None,
    run_timeout_seconds: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    submitter_scope: str | None = None,
) -> Job:
    """A new job's row, first attempt, nothing done yet, in no session: the one place that
    knows what a fresh row holds, whether the API or the mirror (a workflow the API did
    not start) creates it."""
    job = Job(
        id=job_id,
        type=job_type,
        project_id=project_id,
        status=JobStatus.QUEUED,
        params=params,
        attempt=1,
        run_id=run_id,
        progress_done=0,
        run_timeout_seconds=run_timeout_seconds,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        submitter_scope=submitter_scope,
        created_at=created_at,
        updated_at=created_at,
    )
    job.past_attempts = []
    return job


def add_job(session: Session, job: Job) -> None:
    """A new job row, counted in job_counts in the same transaction."""
    session.add(job)
    record_counts(session.connection(), count_change(job.project_id, job.type, None, job.status))


def mark_cancel_requested(session: Session, job_id: str, attempt: int, at: datetime) -> Job:
    """Stamp the attempt whose cancel Temporal accepted, unless it has ended meanwhile."""
    job = get_job(session, job_id, lock=True)
    if job.attempt == attempt and not JobStatus(job.status).is_terminal:
        job.cancel_requested_at = job.updated_at = at
    return job


def delete_job(session: Session, job_id: str) -> None:
    deleted = session.execute(
        delete(Job)
        .where(Job.id == job_id)
        .returning(Job.project_id, Job.status, Job.type)
        .execution_options(synchronize_session=False)
    )
    record_counts(session.connection(), counted((p, s, t) for p, s, t in deleted))


def job_stats(session: Session, project_id: str | None = None) -> JobStats:
    """From job_counts, not jobs: a handful of rows whatever the table's size."""
    query = select(JobCount.status, JobCount.type, func.sum(JobCount.n)).group_by(
        JobCount.status, JobCount.type
    )
    if project_id is not None:
        query = query.where(JobCount.project_id == project_id)
    stats = JobStats()
    for status, job_type, total in session.execute(query):
        count = int(total)
        if count == 0:
            continue
        stats.total += count
        stats.by_status[status] = stats.by_status.get(status, 0) + count
        stats.by_type[job_type] = stats.by_type.get(job_type, 0) + count
    return stats


@dataclass(frozen=True)
class FinishedCount:
    start: datetime
    completed: int
    failed: int


def finished_per_bucket(
    session: Session, now: datetime, bucket: timedelta, span: timedelta, project_id: str | None
) -> list[FinishedCount]:
    """Completed and failed jobs per time bucket over the last `span`, oldest first."""
    buckets = int(span / bucket)
    first = _floor(now, bucket) - bucket * (buckets - 1)
    query = select(Job.status, Job.completed_at).where(
        Job.status.in_([JobStatus.COMPLETED, JobStatus.FAILED]), Job.completed_at >= first
    )
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    counts = [[0, 0] for _ in range(buckets)]
    for status, completed_at in session.execute(query):
        if completed_at is None:
            continue
        index = int((completed_at - first) / bucket)
        if 0 <= index < buckets:
            counts[index][status == JobStatus.FAILED] += 1
    return [
        FinishedCount(first + bucket * i, completed, failed)
        for i, (completed, failed) in enumerate(counts)
    ]


def _floor(moment: datetime, bucket: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=moment.tzinfo)
    return epoch + bucket * int((moment - epoch) / bucket)


def changed_since(session: Session, since: datetime, limit: int) -> list[Job]:
    """Rows written at or after `since`, oldest change first: the dashboard's change feed."""
    query = (
        select(Job)
        .where(Job.updated_at >= since)
        .options(selectinload(Job.past_attempts))
        .order_by(Job.updated_at)
        .limit(limit)
    )
    return list(session.scalars(query))


def delete_finished_before(session: Session, cutoff: datetime) -> int:
    deleted = session.execute(
        delete(Job)
        .where(Job.status.in_(TERMINAL_STATUSES), Job.completed_at < cutoff)
        .returning(Job.project_id, Job.status, Job.type)
        .execution_options(synchronize_session=False)
    )
    change = counted((p, s, t) for p, s, t in deleted)
    record_counts(session.connection(), change)
    return -sum(change.values())


@dataclass(frozen=True)
class RowState:
    """What the mirror compares of a row with Temporal: enough to compare, nothing to write."""

    id: str
    run_id: str | None
    status: JobStatus
    attempt: int
    updated_at: datetime


def row_states(
    connection: Connection | Session,
    ids: Collection[str] | None = None,
    *,
    open_before: datetime | None = None,
) -> dict[str, RowState]:
    """The rows of `ids` (all rows when None) by job id, as plain values; `open_before`:
    only the queued and running ones not written since (candidates for a check)."""
    query = select(Job.id, Job.run_id, Job.status, Job.attempt, Job.updated_at)
    if ids is not None:
        query = query.where(Job.id.in_(ids))
    if open_before is not None:
        query = query.where(
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]), Job.updated_at < open_before
        )
    return {
        job_id: RowState(job_id, run_id, JobStatus(status), attempt, updated_at)
        for job_id, run_id, status, attempt, updated_at in connection.execute(query)
    }


def archived_runs(
    connection: Connection | Session, ids: Collection[str] | None = None
) -> dict[str, set[str]]:
    """The run ids of the past attempts of `ids` (all jobs when None), by job id."""
    query = select(JobAttempt.job_id, JobAttempt.run_id)
    if ids is not None:
        query = query.where(JobAttempt.job_id.in_(ids))
    archived: dict[str, set[str]] = {}
    for job_id, run_id in connection.execute(query):
        if run_id:
            archived.setdefault(job_id, set()).add(run_id)
    return archived


def find_job(session: Session, job_id: str) -> Job | None:
    """The row of `job_id` if there is one, without its past attempts."""
    return session.get(Job, job_id)


def _conditions(where: JobFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.statuses:
        conditions.append(Job.status.in_(list(where.statuses)))
    if where.types:
        conditions.append(Job.type.in_(list(where.types)))
    if where.project_id is not None:
        conditions.append(Job.project_id == where.project_id)
    if where.created_from is not None:
        conditions.append(Job.created_at >= where.created_from)
    if where.created_to is not None:
        conditions.append(Job.created_at < where.created_to)
    if where.id_contains:
        conditions.append(Job.id.contains(where.id_contains, autoescape=True))
    return conditions


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None or not isinstance(job_id, str):
            raise ValueError("incomplete cursor")
        return parsed, job_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidJobInput("The cursor is not one this API returned.") from None
