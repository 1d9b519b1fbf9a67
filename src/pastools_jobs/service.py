"""What users do to jobs, independent of HTTP: submit, cancel, retry, read, clean up.

The row is committed before its workflow starts, so a crash (or a Temporal outage)
between the two leaves a queued row that the mirror starts later; never a workflow the
table does not know. No transaction is ever held across a call to Temporal.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from pastools_jobs.audit.trail import (
    Actor,
    AuditAction,
    in_temporal_words,
    record,
)
from pastools_jobs.bulk import BulkPreview, preview
from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import (
    PAUSE_SIGNAL,
    RESUME_SIGNAL,
    FailureInfo,
    PauseRequest,
    RetryRequest,
)
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job, JobHold
from pastools_jobs.domain import (
    CANCELLABLE_STATUSES,
    RETRYABLE_STATUSES,
    IllegalTransition,
    JobStatus,
    TemporalUnavailable,
)
from pastools_jobs.holds import Hold, RunningJobs, holds, is_held, lift, place
from pastools_jobs.idempotency import claim, request_hash
from pastools_jobs.job_catalog import ALL_PROJECTS, BULK
from pastools_jobs.job_logs.store import LogPage, read_lines
from pastools_jobs.metrics import JOBS_SUBMITTED
from pastools_jobs.mirror.apply import end_unstarted, record_rerun
from pastools_jobs.mirror.observe import observe_job
from pastools_jobs.repository import (
    FinishedCount,
    JobFilter,
    JobPage,
    JobStats,
    delete_finished_before,
    finished_per_bucket,
    get_job,
    job_stats,
    list_jobs,
    mark_cancel_requested,
    queued_job,
)
from pastools_jobs.storage.base import Storage
from pastools_jobs.temporal import JobLauncher, unavailable_as_domain_error
from workflows.params import BulkParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submission:
    type: str
    project_id: str
    params: dict[str, Any]
    actor: Actor
    run_timeout_seconds: int | None = None
    priority: int | None = None
    idempotency_key: str | None = None
    scope: str | None = None
    """The one project the submitter sees; None for one who sees all."""
    reason: str | None = None
    audited_as: AuditAction = AuditAction.JOB_SUBMIT
    audit_details: dict[str, Any] | None = None


@dataclass(frozen=True)
class Submitted:
    job: Job
    replayed: bool
    """An earlier request with the same idempotency key created the job."""


class JobService:
    def __init__(
        self, db: Database, launcher: JobLauncher, storage: Storage, *, metered: bool = True
    ) -> None:
        self._db = db
        self._launcher = launcher
        self._storage = storage
        self._metered = metered

    async def submit(self, submission: Submission) -> Submitted:
        """The job exists once its row is committed: its workflow is started then, or, while
        Temporal cannot be reached, by the mirror later. A client never holds the id of a
        job that is not there, and a replayed key never makes a second one."""
        source = submission.params.get("source")
        if isinstance(source, str):
            # Any job type's `source` names one of its project's import sources.
            await asyncio.to_thread(self._storage.check_source, submission.project_id, source)
        job = new_job(submission)
        claimed = await self._db.run(lambda session: _claim_audited(session, job, submission))
        replayed = claimed is not job
        if not replayed and self._metered:
            JOBS_SUBMITTED.labels(job.type).inc()
        if not replayed or _never_started(claimed):
            claimed = await self._start(claimed)
        return Submitted(claimed, replayed=replayed)

    async def _start(self, job: Job) -> Job:
        """Start the workflow of a committed row (again, for a replay: starting is
        idempotent). The table learns the run id when the work first reports
        (`apply_started`, `apply_progress`): one transaction per submit instead of two."""
        try:
            run_id = await self._launcher.ensure_started(job)
        except TemporalUnavailable:
            # Not started, or started without our hearing of it: the mirror finds out.
            log.warning("job %s is queued until Temporal answers; the mirror starts it", job.id)
            return job
        except RPCError as error:
            log.error("Temporal refused to start job %s: %s", job.id, error)
            refused = FailureInfo(
                type="StartRefused",
                message=f"Temporal refused to start the job's workflow: {error.message}",
            )
            return await self._db.run(lambda session: _end_unstarted(session, job.id, refused))
        if run_id is not None:
            job.run_id = run_id
        return job

    async def get(self, job_id: str) -> Job:
        return await self._db.read(lambda session: get_job(session, job_id))

    async def log_page(self, job_id: str, after: int, limit: int) -> LogPage:
        """Up to `limit` of the job's kept log lines after seq `after`, and how many of its
        lines are no longer kept."""
        return await self._db.read(
            lambda session: read_lines(session.connection(), job_id, after, limit)
        )

    async def page(self, where: JobFilter, limit: int, cursor: str | None) -> JobPage:
        return await self._db.read(lambda session: list_jobs(session, where, limit, cursor))

    async def stats(self, project_id: str | None = None) -> JobStats:
        return await self._db.read(lambda session: job_stats(session, project_id))

    async def cancel(self, job_id: str, actor: Actor, reason: str | None = None) -> Job:
        """Ask Temporal to cancel; the job turns `cancelled` once its activity has stopped.
        The row says a cancel was requested only once Temporal has accepted it, and the
        audit trail says who asked in that same transaction; Temporal's history has who and
        why as the cancel's reason."""
        job = await self.get(job_id)
        _require(job, "cancelled", CANCELLABLE_STATUSES)
        await self._request_cancel(job, in_temporal_words(actor, reason))
        now = utcnow()

        def stamp(session: Session) -> Job:
            row = mark_cancel_requested(session, job.id, job.attempt, now)
            record(
                session,
                actor,
                AuditAction.JOB_CANCEL,
                project_id=job.project_id,
                job_id=job.id,
                reason=reason,
                details={"attempt": job.attempt},
            )
            return row

        return await self._db.run(stamp)

    async def _request_cancel(self, job: Job, reason: str) -> None:
        await self._on_open_run(
            job, "cancelled", lambda run_id: self._cancel_workflow(job.id, run_id, reason)
        )

    async def _on_open_run(
        self, job: Job, action: str, act: Callable[[str | None], Awaitable[None]]
    ) -> None:
        """`act` on the job's run; a 409 if that run has closed.

        A job never started (its API died between commit and start), or whose start is
        still on its way, is started first: Temporal then decides as for any run, and no
        later start can undo the action."""
        try:
            await act(job.run_id)
            return
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND or not _never_started(job):
                raise await self._ended(job, action) from error
        with unavailable_as_domain_error():
            await self._launcher.ensure_started(job)
        try:
            await act(None)
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
            raise await self._ended(job, action) from error

    async def _cancel_workflow(self, job_id: str, run_id: str | None, reason: str) -> None:
        handle = self._launcher.client.get_workflow_handle(job_id, run_id=run_id)
        with unavailable_as_domain_error():
            await handle.cancel(reason=reason)

    async def pause(self, job_id: str, actor: Actor, reason: str | None = None) -> Job:
        """Signal the job to stop its work at its next checkpoint and wait; the row says
        `paused` once the work has stopped (at once for a job whose work has not begun)."""
        return await self._pause_signal(job_id, PAUSE_SIGNAL, AuditAction.JOB_PAUSE, actor, reason)

    async def resume(self, job_id: str, actor: Actor, reason: str | None = None) -> Job:
        """Signal a paused job to go on from where it stopped."""
        return await self._pause_signal(
            job_id, RESUME_SIGNAL, AuditAction.JOB_RESUME, actor, reason
        )

    async def _pause_signal(
        self, job_id: str, signal: str, action: AuditAction, actor: Actor, reason: str | None
    ) -> Job:
        job = await self.get(job_id)
        verb = "paused" if signal == PAUSE_SIGNAL else "resumed"
        _require(job, verb, CANCELLABLE_STATUSES)
        request = PauseRequest(actor=actor.label, channel=actor.channel, reason=reason)
        await self._on_open_run(
            job, verb, lambda run_id: self._signal_workflow(job.id, run_id, signal, request)
        )

        def stamp(session: Session) -> Job:
            record(session, actor, action, project_id=job.project_id, job_id=job.id, reason=reason)
            row = get_job(session, job.id)
            if signal == RESUME_SIGNAL and row.paused_at == job.paused_at:
                # Accepted by Temporal, the resume is under way: the row says so at once
                # (the workflow records it too, once its work starts again), unless a
                # newer pause was recorded meanwhile.
                row.paused_at = None
            return row

        return await self._db.run(stamp)

    async def _signal_workflow(
        self, job_id: str, run_id: str | None, signal: str, request: PauseRequest
    ) -> None:
        handle = self._launcher.client.get_workflow_handle(job_id, run_id=run_id)
        with unavailable_as_domain_error():
            await handle.signal(signal, request)

    async def _ended(self, job: Job, action: str) -> IllegalTransition:
        """The run closed before the action reached it: a 409 saying how it ended."""
        event = await observe_job(self._launcher.client, job.id, job.run_id)
        ended = event.status if event is not None else JobStatus(job.status)
        return IllegalTransition(job.id, ended, action, CANCELLABLE_STATUSES)

    async def retry(
        self, job_id: str, *, scope: str | None, actor: Actor, reason: str | None = None
    ) -> Job:
        """Run a failed or cancelled job again as a new run of the same workflow id, started
        by a signal that carries who retried it and why (signal-with-start).

        Temporal decides first (a job whose workflow still runs is refused), then the row
        records the new attempt, with its audit entry: no transaction waits on Temporal,
        and a refused retry leaves the failed attempt as it was. The new run reads data on
        behalf of whoever retried it (`scope`), not of the first submitter."""
        job = await self.get(job_id)
        _require(job, "retried", RETRYABLE_STATUSES)
        job.submitter_scope = scope
        held = await self._db.run(lambda session: is_held(session, job.project_id, job.type))
        job.paused_at = utcnow() if held else None  # the new run starts paused
        signal = RetryRequest(
            actor=actor.label, channel=actor.channel, reason=reason, retry_id=uuid.uuid4().hex
        )
        try:
            run_id = await self._launcher.retry(job, signal)
        except WorkflowAlreadyStartedError:
            raise IllegalTransition(
                job.id, JobStatus.RUNNING, "retried", RETRYABLE_STATUSES
            ) from None

        def record_attempt(session: Session) -> Job:
            row = get_job(session, job_id, lock=True)
            record_rerun(session, row, job.attempt, run_id, scope)
            if row.run_id == run_id:
                row.paused_at = row.paused_at or job.paused_at
            record(
                session,
                actor,
                AuditAction.JOB_RETRY,
                project_id=job.project_id,
                job_id=job.id,
                reason=reason,
                details={"attempt": job.attempt + 1, "run_id": run_id},
            )
            session.flush()
            session.refresh(row, ["past_attempts"])
            return row

        return await self._db.run(record_attempt)

    async def hold(
        self, hold: Hold, running: RunningJobs, actor: Actor, reason: str | None
    ) -> tuple[JobHold, Submitted]:
        """Hold a project or job type: its new jobs start paused from now on, and a bulk
        job pauses the ones already queued (and running, if asked)."""
        row = await self._db.run(lambda session: place(session, hold, running, actor, reason))
        return row, await self._bulk(hold.pausing(running, reason), actor)

    async def release(self, hold: Hold, actor: Actor, reason: str | None) -> Submitted:
        """Lift the hold, and resume the paused jobs it covers through a bulk job."""
        await self._db.run(lambda session: lift(session, hold, actor, reason))
        return await self._bulk(hold.resuming(reason), actor)

    async def holds(self, project_id: str | None) -> list[JobHold]:
        return await self._db.read(lambda session: holds(session, project_id))

    async def _bulk(self, params: BulkParams, actor: Actor) -> Submitted:
        return await self.submit(
            Submission(
                type=BULK.name,
                project_id=params.filter.project_id or ALL_PROJECTS,
                params=params.model_dump(mode="json"),
                actor=actor,
                scope=params.filter.project_id,
                reason=params.reason,
                audited_as=AuditAction.BULK_START,
                audit_details=params.model_dump(mode="json", include={"action", "filter"}),
            )
        )

    async def finished_per_bucket(
        self, bucket: timedelta, span: timedelta, project_id: str | None
    ) -> list[FinishedCount]:
        now = utcnow()
        return await self._db.read(
            lambda session: finished_per_bucket(session, now, bucket, span, project_id)
        )

    async def preview_bulk(self, params: BulkParams) -> BulkPreview:
        """How many jobs a bulk action would go through and change, with the newest few."""
        return await self._db.read(lambda session: preview(session, params))

    async def cleanup(self, older_than: timedelta, actor: Actor) -> int:
        """Finished jobs older than `older_than` go; their audit entries stay."""
        cutoff: datetime = utcnow() - older_than

        def clean(session: Session) -> int:
            deleted = delete_finished_before(session, cutoff)
            details = {"older_than_days": older_than / timedelta(days=1), "deleted": deleted}
            record(session, actor, AuditAction.JOBS_CLEANUP, details=details)
            return deleted

        return await self._db.run(clean)


def new_job(submission: Submission) -> Job:
    """The queued row of a submission, not yet in any session."""
    key = submission.idempotency_key
    return queued_job(
        uuid.uuid4().hex,
        submission.type,
        submission.project_id,
        submission.params,
        utcnow(),
        run_timeout_seconds=submission.run_timeout_seconds,
        priority=submission.priority,
        idempotency_key=key,
        request_hash=None
        if key is None
        else request_hash(
            submission.type,
            submission.project_id,
            submission.params,
            submission.run_timeout_seconds,
            submission.priority,
        ),
        submitter_scope=submission.scope,
    )


def _claim_audited(session: Session, job: Job, submission: Submission) -> Job:
    """The job of the submission's idempotency key, recorded as submitted if it is new;
    paused from the start if its project or type is held."""
    if is_held(session, job.project_id, job.type):
        job.paused_at = job.created_at
    claimed = claim(session, job)
    if claimed is job:
        record(
            session,
            submission.actor,
            submission.audited_as,
            project_id=job.project_id,
            job_id=job.id,
            reason=submission.reason,
            details={"type": job.type, **(submission.audit_details or {})},
        )
    return claimed


def _never_started(job: Job) -> bool:
    """Queued without a run id: its workflow may not have been started (or its work has
    not reported yet); starting it again is harmless."""
    return job.status == JobStatus.QUEUED and job.run_id is None


def _end_unstarted(session: Session, job_id: str, error: FailureInfo) -> Job:
    end_unstarted(session.connection(), job_id, JobStatus.FAILED, error)
    return get_job(session, job_id)


def _require(job: Job, action: str, allowed: frozenset[JobStatus]) -> None:
    status = JobStatus(job.status)
    if status not in allowed:
        raise IllegalTransition(job.id, status, action, allowed)
