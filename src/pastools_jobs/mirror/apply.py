"""Applying what Temporal says about a job to its row, idempotently and never backwards.

Both writers use these functions: the workflows (through the `record_job_event`
local activity and activity progress) and the reconciler (from Temporal's
visibility and history, for changes no workflow code sees: terminate, timeout).
"""

from datetime import UTC, datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from pastools_jobs.contracts import JobEvent, Progress
from pastools_jobs.db.models import Job, JobAttempt
from pastools_jobs.domain import JobStatus, advances


def utcnow() -> datetime:
    return datetime.now(UTC)


def apply_event(session: Session, event: JobEvent) -> bool:
    """Bring the job's row up to `event`; returns whether anything changed."""
    job = session.get(Job, event.job_id, with_for_update=True)
    if job is None:
        session.add(_new_job(event))
        return True
    if job.run_id != event.run_id and not _adopt_run(session, job, event):
        return False
    if not advances(JobStatus(job.status), event.status):
        return False
    _advance(job, event)
    return True


def restate(session: Session, event: JobEvent) -> bool:
    """Overwrite the row's attempt with Temporal's account of the same run, even backwards.

    Only the operator's consistency check does this, for a row that contradicts its own
    run's workflow (a hand edit, a lost fix): Temporal's history is the truth.
    """
    job = session.get(Job, event.job_id, with_for_update=True)
    if job is None or job.run_id != event.run_id:
        return False
    job.result = None
    job.error_type = job.error_message = job.error_details = None
    job.completed_at = None
    _advance(job, event)
    return True


def apply_progress(session: Session, job_id: str, run_id: str, progress: Progress) -> bool:
    """Record a heartbeat's progress on the row of the attempt that is still open."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.run_id == run_id,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
        )
        .values(
            status=JobStatus.RUNNING,
            progress_done=progress.done,
            progress_total=progress.total,
            progress_message=progress.message,
            checkpoint=progress.checkpoint,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


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
    job.attempt += 1
    job.run_id = None
    job.status = JobStatus.QUEUED
    job.result = None
    job.progress_done = 0
    job.progress_total = None
    job.progress_message = None
    job.checkpoint = None
    job.error_type = job.error_message = job.error_details = None
    job.started_at = job.completed_at = job.cancel_requested_at = None
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


def _new_job(event: JobEvent) -> Job:
    """A row for a workflow the API did not start (e.g. `temporal workflow start`)."""
    job = Job(
        id=event.job_id,
        type=event.job_type,
        project_id=event.project_id,
        status=JobStatus.QUEUED,
        params=event.params,
        attempt=1,
        run_id=event.run_id,
        progress_done=0,
        created_at=event.created_at,
        updated_at=utcnow(),
    )
    _advance(job, event)
    return job


def _advance(job: Job, event: JobEvent) -> None:
    status = event.status
    job.status = status
    job.updated_at = utcnow()
    if status is JobStatus.QUEUED:
        return
    if job.started_at is None:
        job.started_at = event.started_at or event.at
    if not status.is_terminal:
        return
    job.completed_at = event.at
    if status is JobStatus.COMPLETED:
        job.result = event.result
        if job.progress_total:
            job.progress_done = job.progress_total
            job.progress_message = "Done"
    if event.error is not None:
        job.error_type = event.error.type
        job.error_message = event.error.message
        job.error_details = event.error.details
