"""What users do to jobs, independent of HTTP: submit, cancel, retry, read, clean up.

The row is committed before its workflow starts, so a crash between the two leaves
a queued row that the mirror starts later; never a workflow the table does not know.
"""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from pastools_jobs.datasets.sources import check_source
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import (
    CANCELLABLE_STATUSES,
    RETRYABLE_STATUSES,
    IllegalTransition,
    JobStatus,
    TemporalUnavailable,
)
from pastools_jobs.idempotency import claim, request_hash
from pastools_jobs.mirror.apply import archive_attempt, utcnow
from pastools_jobs.repository import (
    FinishedCount,
    JobFilter,
    JobPage,
    JobStats,
    delete_finished_before,
    delete_job,
    finished_per_bucket,
    get_job,
    job_stats,
    list_jobs,
)
from pastools_jobs.temporal import JobLauncher, unavailable_as_domain_error


@dataclass(frozen=True)
class Submission:
    type: str
    project_id: str
    params: dict[str, Any]
    run_timeout_seconds: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Submitted:
    job: Job
    replayed: bool
    """An earlier request with the same idempotency key created the job."""


class JobService:
    def __init__(self, db: Database, launcher: JobLauncher, import_dir: Path) -> None:
        self._db = db
        self._launcher = launcher
        self._import_dir = import_dir

    async def submit(self, submission: Submission) -> Submitted:
        source = submission.params.get("source")
        if isinstance(source, str):
            # Any job type's `source` names a file in the import directory.
            await asyncio.to_thread(check_source, self._import_dir, source)
        job = new_job(submission)
        claimed = await self._db.run(lambda session: claim(session, job))
        if claimed is not job:
            return Submitted(claimed, replayed=True)
        try:
            run_id = await self._launcher.start(job)
        except TemporalUnavailable:
            # Deleting the row also frees its idempotency key for a later retry.
            await self._db.run(lambda session: delete_job(session, job.id))
            raise
        # The table learns the run id when the work first reports (`apply_started`,
        # `apply_progress`): one transaction per submit instead of two.
        job.run_id = run_id
        return Submitted(job, replayed=False)

    async def get(self, job_id: str) -> Job:
        return await self._db.run(lambda session: get_job(session, job_id))

    async def page(self, where: JobFilter, limit: int, cursor: str | None) -> JobPage:
        return await self._db.run(lambda session: list_jobs(session, where, limit, cursor))

    async def stats(self, project_id: str | None = None) -> JobStats:
        return await self._db.run(lambda session: job_stats(session, project_id))

    async def cancel(self, job_id: str) -> Job:
        """Ask Temporal to cancel; the job turns `cancelled` once its activity has stopped."""

        def mark(session: Session) -> Job:
            job = get_job(session, job_id, lock=True)
            _require(job, "cancelled", CANCELLABLE_STATUSES)
            job.cancel_requested_at = job.updated_at = utcnow()
            return job

        job = await self._db.run(mark)
        handle = self._launcher.client.get_workflow_handle(job.id, run_id=job.run_id)
        try:
            with unavailable_as_domain_error():
                await handle.cancel()
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                # Closed meanwhile: the mirror will show how it ended.
                raise IllegalTransition(
                    job.id, JobStatus.COMPLETED, "cancelled", CANCELLABLE_STATUSES
                ) from error
            raise
        return job

    async def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again as a new run of the same workflow id.

        The row changes only if Temporal accepts the new run, so a refused retry
        leaves the failed attempt as it was.
        """

        def rerun(session: Session) -> Job:
            job = get_job(session, job_id, lock=True)
            _require(job, "retried", RETRYABLE_STATUSES)
            archive_attempt(session, job)
            session.flush()
            try:
                job.run_id = asyncio.run_coroutine_threadsafe(
                    self._launcher.start(job, rerun=True), loop
                ).result()
            except WorkflowAlreadyStartedError:
                raise IllegalTransition(
                    job.id, JobStatus.RUNNING, "retried", RETRYABLE_STATUSES
                ) from None
            session.refresh(job, ["past_attempts"])
            return job

        loop = asyncio.get_running_loop()
        return await self._db.run(rerun)

    async def finished_per_bucket(
        self, bucket: timedelta, span: timedelta, project_id: str | None
    ) -> list[FinishedCount]:
        now = utcnow()
        return await self._db.run(
            lambda session: finished_per_bucket(session, now, bucket, span, project_id)
        )

    async def cleanup(self, older_than: timedelta) -> int:
        cutoff: datetime = utcnow() - older_than
        return await self._db.run(lambda session: delete_finished_before(session, cutoff))


def new_job(submission: Submission) -> Job:
    """The queued row of a submission, not yet in any session."""
    now = utcnow()
    key = submission.idempotency_key
    job = Job(
        id=uuid.uuid4().hex,
        type=submission.type,
        project_id=submission.project_id,
        status=JobStatus.QUEUED,
        params=submission.params,
        attempt=1,
        progress_done=0,
        run_timeout_seconds=submission.run_timeout_seconds,
        idempotency_key=key,
        request_hash=None
        if key is None
        else request_hash(
            submission.type,
            submission.project_id,
            submission.params,
            submission.run_timeout_seconds,
        ),
        created_at=now,
        updated_at=now,
    )
    job.past_attempts = []
    return job


def _require(job: Job, action: str, allowed: frozenset[JobStatus]) -> None:
    status = JobStatus(job.status)
    if status not in allowed:
        raise IllegalTransition(job.id, status, action, allowed)
