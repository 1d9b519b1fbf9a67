"""Queries on the jobs table: lookups, filtered listing with cursors, statistics."""

import base64
import binascii
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased, selectinload

from pastools_jobs.counts import count_change, counted, record_counts
from pastools_jobs.db.models import DataTestOutcome, Job, JobAttempt, JobCount
from pastools_jobs.domain import TERMINAL_STATUSES, InvalidJobInput, JobNotFound, JobStatus
from pastools_jobs.param_filters import ParamFilter, is_prefix, param_conditions


@dataclass(frozen=True)
class JobFilter:
    statuses: Sequence[JobStatus] = ()
    types: Sequence[str] = ()
    project_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    id_contains: str | None = None
    error_types: Sequence[str] = ()
    params: Sequence[ParamFilter] = ()
    excluded_id: str | None = None
    """A job never matched: a bulk action's own."""
    paused: bool | None = None
    """Only paused jobs (True), only jobs not paused (False), or both (None)."""


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
    paused: int = 0


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
    dialect = session.get_bind().dialect.name
    conditions = _conditions(replace(where, params=()), dialect)
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor)
        conditions.append(tuple_(Job.created_at, Job.id) < tuple_(created_at, job_id))
    params = param_conditions(where.params, dialect)
    if params and dialect == "postgresql":
        jobs = _by_parameters(session, conditions, where.params, limit)
    else:
        jobs = _newest(session, select(Job).where(*conditions, *params), Job, limit)
    if len(jobs) <= limit:
        return JobPage(jobs, None)
    last = jobs[limit - 1]
    return JobPage(jobs[:limit], encode_cursor(last.created_at, last.id))


EQUALITY_WINDOWS = (100,)
PREFIX_WINDOWS = (100, 1000)
"""How many of the newest rows a parameter filter looks through, in turn and in pages'
worth, before the whole table (`_from_newest_window`): 5,100 and 51,000 for a page of
50, enough for a value one job in a hundred has; a prefix has no index to fall back on."""


def _by_parameters(
    session: Session,
    conditions: list[ColumnElement[bool]],
    filters: Sequence[ParamFilter],
    limit: int,
) -> list[Job]:
    """A page of a parameter filter on PostgreSQL, which cannot estimate how many rows a
    JSONB containment matches (it assumes one in a hundred) and so picks the wrong plan
    at either end: for a common value, every match through the GIN index, then a sort
    (seconds for a value a quarter of a million jobs share); for a rare one, a walk of
    the whole table newest first, in the hope of a page soon (seconds too).

    A common value fills its page within a hundred pages' worth of the newest rows, so
    those are looked through first, in index order (`_from_newest_window`); a value that
    does not is rare enough that reading all its matches, through the index, and sorting
    them is quick, and the subquery (`OFFSET 0`: not merged into the outer query) makes
    the planner do just that. A prefix, which no index serves, tries a larger window
    before reading the whole table."""
    prefixes = any(is_prefix(value) for f in filters for value in f.values)
    for times in PREFIX_WINDOWS if prefixes else EQUALITY_WINDOWS:
        jobs = _from_newest_window(session, conditions, filters, limit, times * (limit + 1))
        if jobs is not None:
            return jobs
    everything = select(Job).where(*conditions, *param_conditions(filters, "postgresql"))
    matches = aliased(Job, everything.offset(0).subquery())
    return _newest(session, select(matches), matches, limit)


def _from_newest_window(
    session: Session,
    conditions: list[ColumnElement[bool]],
    filters: Sequence[ParamFilter],
    limit: int,
    size: int,
) -> list[Job] | None:
    """The page of a parameter filter from the `size` newest rows the other filters
    leave, if they hold it; None if they do not."""
    newest = (
        select(Job)
        .where(*conditions)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(size)
        .subquery()
    )
    window = aliased(Job, newest)
    matching = param_conditions(filters, "postgresql", window.params)
    jobs = _newest(session, select(window).where(*matching), window, limit)
    return jobs if len(jobs) > limit else None


def _newest(session: Session, query: Select[Any], job: Any, limit: int) -> list[Job]:
    """The first `limit + 1` rows of `query`, newest first, with their past attempts."""
    ordered = query.order_by(job.created_at.desc(), job.id.desc()).limit(limit + 1)
    return list(session.scalars(ordered.options(selectinload(job.past_attempts))))


def count_jobs(session: Session, where: JobFilter) -> int:
    conditions = _conditions(where, session.get_bind().dialect.name)
    return session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0


def queued_job(
    job_id: str,
    job_type: str,
    project_id: str,
    params: dict[str, Any],
    created_at: datetime,
    *,
    run_id: str | None = None,
    run_timeout_seconds: int | None = None,
    priority: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    submitter_scope: str | None = None,
    schedule_id: str | None = None,
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
        priority=priority,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        submitter_scope=submitter_scope,
        schedule_id=schedule_id,
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
    stats.paused = _paused_count(session, project_id)
    return stats


def _paused_count(session: Session, project_id: str | None) -> int:
    """Paused jobs are few and open: counted from the index on `paused_at`."""
    query = select(func.count()).select_from(Job).where(Job.paused_at.is_not(None))
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    return session.scalar(query) or 0


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
    return len(_delete_finished(session, Job.completed_at < cutoff))


def delete_finished(session: Session, job_ids: Collection[str]) -> list[tuple[str, str]]:
    """Delete those of `job_ids` that have finished (with their attempts); the id and
    project of each deleted."""
    return _delete_finished(session, Job.id.in_(list(job_ids)))


def record_checkpoint(session: Session, job_id: str, checkpoint: Any) -> None:
    """Where a job's work stands, written with the work it covers (a bulk deletion)."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(checkpoint=checkpoint)
        .execution_options(synchronize_session=False)
    )


def _delete_finished(session: Session, condition: ColumnElement[bool]) -> list[tuple[str, str]]:
    """Delete the finished jobs that meet `condition`, and their counts; the id and project
    of each. A data test's history outlives its runs' jobs, but only that of the runs that
    completed: the outcomes of a failed or cancelled run go with its job."""
    not_completed = select(Job.id).where(
        Job.status.in_(TERMINAL_STATUSES - {JobStatus.COMPLETED}), condition
    )
    session.execute(
        delete(DataTestOutcome)
        .where(DataTestOutcome.job_id.in_(not_completed))
        .execution_options(synchronize_session=False)
    )
    deleted = session.execute(
        delete(Job)
        .where(Job.status.in_(TERMINAL_STATUSES), condition)
        .returning(Job.id, Job.project_id, Job.status, Job.type)
        .execution_options(synchronize_session=False)
    ).all()
    record_counts(session.connection(), counted((p, s, t) for _, p, s, t in deleted))
    return [(job_id, project_id) for job_id, project_id, _, _ in deleted]


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


def _conditions(where: JobFilter, dialect: str) -> list[ColumnElement[bool]]:
    conditions = param_conditions(where.params, dialect)
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
    if where.error_types:
        conditions.append(Job.error_type.in_(list(where.error_types)))
    if where.excluded_id is not None:
        conditions.append(Job.id != where.excluded_id)
    if where.paused is not None:
        conditions.append(Job.paused_at.is_not(None) if where.paused else Job.paused_at.is_(None))
    return conditions


def encode_cursor(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None or not isinstance(job_id, str) or "\x00" in job_id:
            raise ValueError("incomplete cursor")  # PostgreSQL's text holds no NUL
        return parsed, job_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidJobInput("The cursor is not one this API returned.") from None
