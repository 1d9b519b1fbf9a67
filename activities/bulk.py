"""The bulk job's work: act on every job a filter matches, a page at a time.

Newest first through the list's own cursor, so that memory stays one page however many
match, and the checkpoint (the cursor and the counts so far) lets a retried attempt
resume at the page it was on. Each job goes through the very service the single actions
use: a job that finished (or was deleted) meanwhile is skipped, not an error. Only
Temporal or the database being out of reach fails the attempt, which is then retried
from its checkpoint.
"""

import asyncio
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.context import ActivityGroup
from activities.job import current_job_run
from pastools_jobs.audit.trail import AuditAction, audit_entry, bulk_job, record_many
from pastools_jobs.bulk import action_filter
from pastools_jobs.contracts import Progress, Work
from pastools_jobs.db.models import Job
from pastools_jobs.domain import IllegalTransition, JobError, JobNotFound, TemporalUnavailable
from pastools_jobs.repository import (
    JobPage,
    count_jobs,
    delete_finished,
    find_job,
    list_jobs,
    record_checkpoint,
)
from pastools_jobs.service import JobService
from pastools_jobs.temporal import JobLauncher
from workflows.params import BulkParams
from workflows.results import BulkFailure, BulkResult

MAX_FAILURES_KEPT = 100
CONCURRENT_ACTIONS = 16
"""Cancels or retries in flight at once: each is a round trip to Temporal and the table."""


class BulkWork(Work):
    params: BulkParams
    scope: str | None
    """The one project whoever started the action sees; None for one who sees all."""


class BulkCheckpoint(BaseModel):
    cursor: str | None = None
    """The list's cursor after the last page acted on; None before the first."""
    matched: int | None = None
    done: int = 0
    changed: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[BulkFailure] = Field(default_factory=list)

    def passed(self, page: JobPage) -> None:
        self.done += len(page.jobs)
        self.cursor = page.next_cursor


Act = Callable[[JobPage, BulkCheckpoint], Awaitable[None]]


class BulkActivities(ActivityGroup):
    @activity.defn(name="apply_bulk_action")
    async def apply_bulk_action(self, work: BulkWork) -> BulkResult:
        params = work.params
        if work.scope is not None and params.filter.project_id != work.scope:
            raise ApplicationError(
                f"A bulk action of project {work.scope} must filter on that project.",
                type="OutOfScope",
                non_retryable=True,
            )
        own_id = current_job_run().job_id
        where = action_filter(params, excluded_id=own_id)
        db, reporter = self.context.db, self.reporter()
        state = await self._resumed(work, own_id)
        if state.matched is None:
            state.matched = await db.run(lambda session: count_jobs(session, where))
        act = self._action(work, own_id)
        size = params.page_size
        while True:
            page = await db.run(lambda session: list_jobs(session, where, size, state.cursor))
            await act(page, state)
            total = max(state.matched, state.done)
            await reporter.report(
                Progress(
                    done=state.done,
                    total=total,
                    message=f"{params.action}: {state.done} of {total} jobs gone through, "
                    f"{state.changed} changed",
                    checkpoint=state.model_dump(mode="json"),
                ),
                force=page.next_cursor is None,
            )
            if page.next_cursor is None:
                break
        return BulkResult(action=params.action, **state.model_dump(exclude={"cursor", "done"}))

    async def _resumed(self, work: BulkWork, own_id: str) -> BulkCheckpoint:
        """The furthest checkpoint: the last heartbeat's, or the one a page of deletions
        committed with itself on the bulk job's row (`_deleting`), which may be later."""
        beat = self.resume(work, BulkCheckpoint)
        job = await self.context.db.run(lambda session: find_job(session, own_id))
        if job is None or not isinstance(job.checkpoint, dict):
            return beat
        recorded = BulkCheckpoint.model_validate(job.checkpoint)
        return recorded if recorded.done > beat.done else beat

    def _action(self, work: BulkWork, own_id: str) -> Act:
        if work.params.action == "delete":
            return self._deleting(own_id, work.params)
        context = self.context
        launcher = JobLauncher.of(activity.client(), context.settings)
        service = JobService(
            context.db, launcher, context.storage, metered=context.settings.metrics_enabled
        )
        actor, reason = bulk_job(own_id), work.params.reason
        acts: dict[str, Callable[[str], Awaitable[object]]] = {
            "cancel": lambda job_id: service.cancel(job_id, actor, reason),
            "retry": lambda job_id: service.retry(
                job_id, scope=work.scope, actor=actor, reason=reason
            ),
            "pause": lambda job_id: service.pause(job_id, actor, reason),
            "resume": lambda job_id: service.resume(job_id, actor, reason),
        }
        one = acts[work.params.action]

        async def each(page: JobPage, state: BulkCheckpoint) -> None:
            await _each(one, page.jobs, state)
            state.passed(page)

        return each

    def _deleting(self, own_id: str, params: BulkParams) -> Act:
        """Deletions are counted in the transaction that makes them, together with the
        checkpoint after them: a worker killed before its next heartbeat leaves no
        page deleted and uncounted."""

        actor, reason = bulk_job(own_id), params.reason

        def delete_page(session: Session, page: JobPage, state: BulkCheckpoint) -> None:
            ids = [job.id for job in page.jobs]
            deleted_ids = delete_finished(session, ids)
            record_many(
                session,
                (
                    audit_entry(
                        actor,
                        AuditAction.JOB_DELETE,
                        project_id=project,
                        job_id=job_id,
                        reason=reason,
                    )
                    for job_id, project in deleted_ids
                ),
            )
            deleted = len(deleted_ids)
            state.changed += deleted
            state.skipped += len(ids) - deleted
            state.passed(page)
            record_checkpoint(session, own_id, state.model_dump(mode="json"))

        async def delete(page: JobPage, state: BulkCheckpoint) -> None:
            await self.context.db.run(lambda session: delete_page(session, page, state))

        return delete


async def _each(
    action: Callable[[str], Awaitable[object]], jobs: list[Job], state: BulkCheckpoint
) -> None:
    """`action` on every job of a page, a bounded number at once."""
    slots = asyncio.Semaphore(CONCURRENT_ACTIONS)

    async def one(job_id: str) -> None:
        async with slots:
            try:
                await action(job_id)
            except (IllegalTransition, JobNotFound):
                state.skipped += 1
                return
            except TemporalUnavailable:
                raise  # the attempt fails and is retried from the page's checkpoint
            except (JobError, RPCError) as error:
                _failed(state, job_id, str(error))
                return
            state.changed += 1

    await asyncio.gather(*(one(job.id) for job in jobs))


def _failed(state: BulkCheckpoint, job_id: str, reason: str) -> None:
    state.failed += 1
    if len(state.failures) < MAX_FAILURES_KEPT:
        state.failures.append(BulkFailure(job_id=job_id, reason=reason))
