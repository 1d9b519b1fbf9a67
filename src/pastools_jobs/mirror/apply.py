"""Applying what Temporal says about a job to its row, idempotently and never backwards.

Both writers use these functions: the workflows (through the `record_job_event`
local activity and activity progress) and the reconciler (from Temporal's
visibility and history, for changes no workflow code sees: terminate, timeout).
"""

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Update, and_, bindparam, case, exists, func, or_, select, update
from sqlalchemy.orm import Session

from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import FailureInfo, JobEvent, PauseChange, Progress
from pastools_jobs.counts import count_change, record_counts
from pastools_jobs.db.models import Job, JobAttempt
from pastools_jobs.domain import RETRYABLE_STATUSES, JobStatus, advances
from pastools_jobs.repository import queued_job
from pastools_jobs.webhooks.outbox import enqueue_job_event


@dataclass(frozen=True, slots=True)
class Applied:
    """An event that changed its job's row, and what the row says that the event does not:
    when the run's work started (the first report of it, which a final event does not
    repeat). Returned by the UPDATE that moves the row, so a finished run is counted in
    the metrics without reading its row again."""

    started_at: datetime | None


def apply_event(session: Session, event: JobEvent) -> Applied | None:
    """Bring the job's row up to `event`; None if nothing changed."""
    session.flush()  # the session's pending changes go first, as before an ORM statement
    if applied := _advance_in_place(session.connection(), event):
        return applied
    job = session.get(Job, event.job_id, with_for_update=True, populate_existing=True)
    if job is None:
        job = _new_job(session, event)
        moved = _advance(session, job, event) if event.status is not JobStatus.QUEUED else None
        return moved or Applied(started_at=None)
    if job.run_id != event.run_id and not _adopt_run(session, job, event):
        return None
    if not advances(JobStatus(job.status), event.status):
        return None
    return _advance(session, job, event)


def apply_observed(session: Session, event: JobEvent) -> Applied | None:
    """Bring the row up to what Temporal's own records say of a run (describe, history).

    Like `apply_event`, and more: a run that Temporal closed otherwise than the row's final
    status says (a cancel that won a race with the work's end in an earlier version, a
    terminate in the instant after the workflow recorded its end, a hand edit) is restated,
    because a closed run cannot change any more and the row must agree with it."""
    return apply_event(session, event) or restate(session, event)


def restate(session: Session, event: JobEvent) -> Applied | None:
    """Overwrite the row's finished attempt with Temporal's account of the same closed run.

    Never the other way: an open run does not move a finished row back (the workflow may
    have recorded its end an instant before closing). The row's new final status is a
    new end for its webhooks: they are sent its event as well (`webhooks/outbox.py`)."""
    if not event.status.is_terminal:
        return None
    job = session.get(Job, event.job_id, with_for_update=True)
    if job is None or job.run_id != event.run_id or job.status == event.status:
        return None
    job.result = None
    job.error_type = job.error_message = job.error_details = None
    job.completed_at = None
    return _advance(session, job, event)


_NEWEST_FIRST = [JobStatus.RUNNING, JobStatus.QUEUED]
"""The statuses a row can advance from, the likeliest first: most events find it running."""


def _advance_in_place(connection: Connection, event: JobEvent) -> Applied | None:
    """The common case in single UPDATEs, no row loaded: an event of the row's own run (or
    of the run the API just started, whose id the row does not hold yet) that moves it
    forward. `advances` decides which statuses qualify, in the WHERE clause; anything
    else (a new row, another run, a repeat) is left to the locked read in `apply_event`."""
    origins = [before for before in _NEWEST_FIRST if advances(before, event.status)]
    return _move_open_row(
        connection, event.job_id, event.run_id, origins, event.status, _advanced_values(event)
    )


def _advanced_values(event: JobEvent) -> dict[str, Any]:
    """What advancing to `event` writes, by column name: the per-call values of the
    UPDATE's SET clause (`_moving_update`), for a row in place and a loaded one alike."""
    status = event.status
    values: dict[str, Any] = {"updated_at": utcnow()}
    if status is JobStatus.QUEUED:
        return values
    values["started_at"] = event.started_at or event.at
    if not status.is_terminal:
        return values
    values["completed_at"] = event.at
    if status is JobStatus.COMPLETED:
        values["result"] = event.result
    if event.error is not None:
        values["error_type"] = event.error.type
        values["error_message"] = event.error.message
        values["error_details"] = event.error.details
    return values


def apply_progress(
    connection: Connection,
    job_id: str,
    run_id: str,
    progress: Progress,
    started_at: datetime | None = None,
    *,
    likely_queued: bool = False,
) -> bool:
    """Record a heartbeat's progress on the row of the attempt that is still open.

    The first report of a run is also how its row learns that the work started: it makes
    a queued row running, with its start time and run id (and counts that). A reporter
    that has not yet written says `likely_queued`, to try that status first."""
    values = _started_values(started_at) | {
        "progress_done": progress.done,
        "progress_total": progress.total,
        "progress_message": progress.message,
        "checkpoint": progress.checkpoint,
    }
    # Running again last: a concurrent write (`apply_started`) may move the row from
    # queued to running between two UPDATEs, which then both miss it.
    likeliest = [JobStatus.QUEUED] if likely_queued else _NEWEST_FIRST
    origins = [*likeliest, JobStatus.RUNNING]
    moved = _move_open_row(connection, job_id, run_id, origins, JobStatus.RUNNING, values)
    return moved is not None


PARTITIONS_DONE = "partitions_done"
"""The key, in a partitioned job's row checkpoint, of each partition's own progress."""


def apply_partition_progress(
    connection: Connection,
    job_id: str,
    run_id: str,
    partition: int,
    progress: Progress,
    job_total: int,
    started_at: datetime | None = None,
    *,
    likely_queued: bool = False,
) -> Progress:
    """Record one partition's progress, and make the row's the sum over the partitions.

    Each partition reports its own done, as far as it got (a retried one goes back to its
    checkpoint, truthfully); the row keeps each in its checkpoint column, read and written
    in one locked transaction (FOR UPDATE on PostgreSQL, SQLite's writes are serial), so
    that partitions reporting at once do not lose each other's. Returns the job's progress."""
    row = connection.execute(
        select(Job.checkpoint).where(Job.id == job_id).with_for_update()
    ).first()
    previous = row[0] if row is not None else None
    parts: dict[str, int] = {}
    if (
        isinstance(previous, dict)
        and previous.get("run_id") == run_id  # a new run of the job starts from nothing
        and isinstance(previous.get(PARTITIONS_DONE), dict)
    ):
        parts = dict(previous[PARTITIONS_DONE])
    parts[str(partition)] = progress.done
    done = min(sum(parts.values()), job_total)
    job = Progress(
        done=done,
        total=max(job_total, 1),
        message=f"{done} of {job_total} done (partition {partition + 1}: {progress.message})",
        checkpoint={"run_id": run_id, PARTITIONS_DONE: parts},
    )
    apply_progress(connection, job_id, run_id, job, started_at, likely_queued=likely_queued)
    return job


def apply_started(connection: Connection, job_id: str, run_id: str, started_at: datetime) -> bool:
    """Make the queued row of the run the API started running, before any progress."""
    values = _started_values(started_at)
    queued = [JobStatus.QUEUED]
    return _move_open_row(connection, job_id, run_id, queued, JobStatus.RUNNING, values) is not None


def end_unstarted(
    connection: Connection, job_id: str, status: JobStatus, error: FailureInfo
) -> bool:
    """End a queued row whose workflow was never started (Temporal refused the start, or
    a cancel was requested before a crash let it be sent): no run will ever record it."""
    values = {
        "updated_at": utcnow(),
        "completed_at": utcnow(),
        "error_type": error.type,
        "error_message": error.message,
        "error_details": error.details,
    }
    return _move_open_row(connection, job_id, None, [JobStatus.QUEUED], status, values) is not None


def _started_values(started_at: datetime | None) -> dict[str, Any]:
    now = utcnow()
    return {"started_at": started_at or now, "updated_at": now}


def _move_open_row(
    connection: Connection,
    job_id: str,
    run_id: str | None,
    origins: Iterable[JobStatus],
    status: JobStatus,
    values: dict[str, Any],
) -> Applied | None:
    """One UPDATE per status the row of `run_id` may move from, likeliest first: the first
    that matches moves the row, and its count with it, without loading it. `values` are
    the SET clause's values by column name. Core statements: the ORM's bulk-update
    machinery cost more than the UPDATE on these hot paths. Every move to a final status
    passes here, so this is where the job's webhook events are written (the outbox), in
    the move's transaction."""
    parameters = values | {_JOB_ID.key: job_id, _RUN_ID.key: run_id}
    for before in origins:
        moving = _moving_update(before, status, tuple(values))
        changed = connection.execute(moving, parameters).first()
        if changed is not None:
            project_id, job_type, started_at = changed
            record_counts(connection, count_change(project_id, job_type, before, status))
            if status.is_terminal:
                enqueue_job_event(connection, job_id, project_id, job_type, status)
            return Applied(started_at=started_at)
    return None


_JOB_ID = bindparam("row_job_id", type_=Job.id.type)
_RUN_ID = bindparam("row_run_id", type_=Job.run_id.type)

_ROW_OF_RUN = and_(
    Job.id == _JOB_ID,
    or_(
        Job.run_id == _RUN_ID,
        and_(
            Job.run_id.is_(None),
            ~exists().where(JobAttempt.job_id == _JOB_ID, JobAttempt.run_id == _RUN_ID),
        ),
    ),
)
"""The job's row if it holds the run, or holds no run id yet (the run the API just
started) and the run is not one of its archived attempts."""


@functools.cache
def _moving_update(before: JobStatus, status: JobStatus, columns: tuple[str, ...]) -> Update:
    """The UPDATE that moves the row of a run from `before` to `status`, and sets `columns`
    from parameters of the same names. Built once per shape and reused, so that SQLAlchemy
    neither rebuilds nor re-keys it: that was a third of these writes' CPU."""
    table = Job.__table__.c
    values: dict[str, Any] = {"status": status, "run_id": _RUN_ID}
    for name in columns:
        given = bindparam(name, type_=table[name].type)
        # A run's start is the first one recorded: a later report does not move it.
        values[name] = func.coalesce(Job.started_at, given) if name == "started_at" else given
    if status.is_terminal:
        values["paused_at"] = None  # a job cancelled while paused is paused no more
    if status is JobStatus.COMPLETED:
        finished = Job.progress_total > 0
        values["progress_done"] = case((finished, Job.progress_total), else_=Job.progress_done)
        values["progress_message"] = case((finished, "Done"), else_=Job.progress_message)
    return (
        update(Job)
        .where(_ROW_OF_RUN, Job.status == before)
        .values(values)
        .returning(Job.project_id, Job.type, Job.started_at)
    )


def apply_pause(connection: Connection, change: PauseChange) -> bool:
    """Record that the open row of the run stopped for a pause, or went on after one."""
    moved = connection.execute(
        update(Job)
        .where(
            Job.id == change.job_id,
            or_(Job.run_id == change.run_id, Job.run_id.is_(None)),
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        )
        .values(paused_at=change.paused_at, updated_at=utcnow())
    )
    return moved.rowcount > 0


def record_run(session: Session, job_id: str, run_id: str) -> bool:
    """The id of a run the platform started on a row that had none, unless its work's
    first report was quicker; whether the row now names that run."""
    job = session.get(Job, job_id)
    if job is None:
        return False
    if job.run_id is None:
        job.run_id = run_id
    return job.run_id == run_id


def record_rerun(session: Session, job: Job, attempt: int, run_id: str, scope: str | None) -> None:
    """The run a retry of `attempt` started, once Temporal accepted it. If a writer of
    that run got there first (its work reported, or it ended, and the row adopted it),
    the row is already the new attempt's; either way it records whose scope the run reads
    data with."""
    if job.attempt == attempt and JobStatus(job.status) in RETRYABLE_STATUSES:
        archive_attempt(session, job)
        job.run_id = run_id
    if job.run_id == run_id:
        job.submitter_scope = scope


def archive_attempt(session: Session, job: Job) -> None:
    """Keep the finished attempt readable, then clear the row for the next one."""
    session.add(
        JobAttempt(
            job_id=job.id,
            attempt=job.attempt,
            run_id=job.run_id,
            status=job.status,
            progress_done=job.progress_done,
            progress_total=job.progress_total,
            error_type=job.error_type,
            error_message=job.error_message,
            error_details=job.error_details,
            started_at=job.started_at,
            completed_at=job.completed_at,
        )
    )
    record_counts(
        session.connection(), count_change(job.project_id, job.type, job.status, JobStatus.QUEUED)
    )
    job.attempt += 1
    job.run_id = None
    job.status = JobStatus.QUEUED
    job.result = None
    job.progress_done = 0
    job.progress_total = None
    job.progress_message = None
    job.checkpoint = None
    job.error_type = job.error_message = job.error_details = None
    job.started_at = job.completed_at = job.cancel_requested_at = job.paused_at = None
    job.updated_at = utcnow()


def is_archived_run(session: Session, job_id: str, run_id: str) -> bool:
    return bool(
        session.scalar(
            select(exists().where(JobAttempt.job_id == job_id, JobAttempt.run_id == run_id))
        )
    )


def _adopt_run(session: Session, job: Job, event: JobEvent) -> bool:
    """Decide whether `event`, from another run than the row's, is the job's newest attempt.

    A retry started by the API leaves the row queued without a run id; a run started
    from outside (the CLI, after a failure) follows a finished attempt.
    """
    if is_archived_run(session, job.id, event.run_id):
        return False
    if job.run_id is not None:
        # A closed run's id can be started again only after it closed.
        newer = job.completed_at is not None and event.created_at > job.completed_at
        if not (JobStatus(job.status).is_terminal and newer):
            return False
        archive_attempt(session, job)
    job.run_id = event.run_id
    job.params = event.params
    return True


def _new_job(session: Session, event: JobEvent) -> Job:
    """A queued row for a workflow the API did not start (`temporal workflow start`, a
    schedule)."""
    job = queued_job(
        event.job_id,
        event.job_type,
        event.project_id,
        event.params,
        event.created_at,
        run_id=event.run_id,
        schedule_id=event.schedule_id,
    )
    session.add(job)
    record_counts(session.connection(), count_change(job.project_id, job.type, None, job.status))
    return job


def _advance(session: Session, job: Job, event: JobEvent) -> Applied | None:
    """Move a loaded row to `event` with the very UPDATE that moves a row in place
    (`_moving_update`), so that its rules (a run's first start stays, a completed run's
    progress reads full) are stated once; then read the row back."""
    session.flush()
    before = [JobStatus(job.status)]
    values = _advanced_values(event)
    moved = _move_open_row(session.connection(), job.id, event.run_id, before, event.status, values)
    session.refresh(job)
    return moved
