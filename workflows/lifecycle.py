"""The lifecycle every job shares: record state, run the type's work, report the outcome.

A job type subclasses `JobWorkflow[P, R]` (its parameters and result models), names its
spec and activities, and implements `execute`; its `@workflow.run` method only delegates
to `run_job` (the SDK wants the run method on the class itself).
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.context import ActivityGroup
    from activities.mirror import MirrorActivities
    from pastools_jobs.contracts import (
        JOB_PROGRESS,
        JOB_STATUS,
        JOB_TYPE,
        PROGRESS_SIGNAL,
        PROJECT_ID,
        RETRY_SIGNAL,
        FailureInfo,
        JobEvent,
        JobRequest,
        RetryRequest,
    )
    from pastools_jobs.domain import JobStatus
    from pastools_jobs.failures import describe_failure
    from pastools_jobs.job_spec import JobTypeSpec, P, R
    from workflows.running_slot import RunningSlotHolder
    from workflows.work_options import WORK_RETRY_POLICY, work_activity_options

T = TypeVar("T")
W = TypeVar("W")

OUTCOME_WINS_PATCH = "outcome-wins-over-a-late-cancel"
"""Runs begun before it let a cancel that met the work's outcome win; they replay so."""

SNAPSHOT_PATCH = "snapshot-what-the-work-runs-against"
"""Runs begun before it took no snapshot: their work read the project's schema or test
suite in every attempt; they replay so."""

_SNAPSHOT_TIMEOUT = timedelta(seconds=30)

_RECORD_POLICY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


@dataclass(frozen=True)
class JobContext:
    """Who and what a job is for, as its work needs to know."""

    project_id: str
    scope: str | None
    """The one project the submitter sees; None for one who sees all (`JobRequest.scope`)."""


class JobWorkflow(RunningSlotHolder, Generic[P, R]):
    spec: JobTypeSpec[P, R]
    """The type's name, parameters and result models, which the API and the mirror know."""
    activity_groups: ClassVar[tuple[type[ActivityGroup], ...]]

    def __init__(self) -> None:
        self._percent = 0
        self._running_said = False
        """Whether JobStatus says `running` (or has moved past it)."""

    @workflow.signal(name=RETRY_SIGNAL)
    def note_retry(self, request: RetryRequest) -> None:
        """The signal that started this run as a retry; it changes nothing in the run, its
        place in the history is the record of who retried the job and why. A retry sent
        to a run that is still going (the API refuses it then) is only noted too."""
        workflow.logger.info(
            "retried by %s via %s%s",
            request.actor,
            request.channel,
            f": {request.reason}" if request.reason else "",
        )

    @workflow.signal(name=PROGRESS_SIGNAL)
    def report_progress(self, percent: int) -> None:
        """The work's progress; its first signal also makes JobStatus `running` when the
        API set the attributes at start (`JobRequest.attributes_set`)."""
        updates: list[SearchAttributeUpdate[Any]] = []
        if not self._running_said:
            self._running_said = True
            updates.append(JOB_STATUS.value_set(JobStatus.RUNNING))
        if percent > self._percent:
            self._percent = percent
            updates.append(JOB_PROGRESS.value_set(percent))
        if updates:
            workflow.upsert_search_attributes(updates)

    async def execute(self, job: JobContext, params: P) -> R:
        raise NotImplementedError

    async def snapshot(self, activity: Callable[[Any, W], Awaitable[T]], work: W) -> T | None:
        """What the work runs against (a schema, a test suite), read once when the job starts
        and kept in its history: every attempt of the work gets the same, so a retry after
        the project changed cannot mix two versions. None when replaying an earlier run."""
        if not workflow.patched(SNAPSHOT_PATCH):
            return None
        return await workflow.execute_local_activity_method(
            activity, work, start_to_close_timeout=_SNAPSHOT_TIMEOUT, retry_policy=WORK_RETRY_POLICY
        )

    async def run_work(self, activity: Callable[[Any, W], Awaitable[T]], work: W) -> T:
        """Run the type's long activity (heartbeats, retries, real cancellation) to its
        outcome: a cancel requested once that outcome has reached the workflow loses to it."""
        handle = workflow.start_activity_method(activity, work, **work_activity_options())
        return await _outcome(handle)

    async def run_job(self, request: JobRequest) -> R:
        job = JobContext(request.project_id, request.scope)
        try:
            await self._start(request)
            params = self._parse(request)
            async with self.running_slot(request.project_id):
                result = await self.execute(job, params)
        except (asyncio.CancelledError, ActivityError, ApplicationError) as error:
            if _is_cancellation(error):
                await self._record(
                    request,
                    JobStatus.CANCELLED,
                    error=FailureInfo(type="Cancelled", message="The job was cancelled."),
                )
                raise
            failure = describe_failure(error)
            await self._record(request, JobStatus.FAILED, error=failure)
            raise ApplicationError(
                failure.message, failure.details, type=failure.type, non_retryable=True
            ) from error
        await self._record(request, JobStatus.COMPLETED, result=result.model_dump(mode="json"))
        return result

    def _parse(self, request: JobRequest) -> P:
        try:
            return self.spec.params_model.model_validate(request.params)
        except ValidationError as error:
            problems = [
                {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                for e in error.errors()
            ]
            raise ApplicationError(
                f"Invalid parameters for a {self.spec.name} job.",
                problems,
                type="InvalidParameters",
                non_retryable=True,
            ) from None

    async def _start(self, request: JobRequest) -> None:
        """Say in the search attributes that the job runs (a workflow started from the CLI
        gets its type and project there too), unless the API set them at start.

        A row the API wrote learns it from the work's first progress report (one local
        activity, two activations and one transaction fewer per job), and so does
        JobStatus (`report_progress`: one history event and one visibility write fewer
        per job, and a job waiting for a worker slot stays `queued` there too). Other
        workflows, and runs begun before `row_exists` or `attributes_set` existed
        (replayed as they ran), say and record it here."""
        if not request.attributes_set:
            self._running_said = True
            workflow.upsert_search_attributes(
                [
                    JOB_STATUS.value_set(JobStatus.RUNNING),
                    JOB_TYPE.value_set(self.spec.name),
                    PROJECT_ID.value_set(request.project_id),
                    JOB_PROGRESS.value_set(0),
                ]
            )
        if not request.row_exists:
            await self._record_in_table(request, JobStatus.RUNNING)

    async def _record(
        self,
        request: JobRequest,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: FailureInfo | None = None,
    ) -> None:
        """Tell the search attributes and the table how the job ended. The outcome is
        decided by now: a cancel arriving meanwhile must not cut the record short, or the
        workflow would close otherwise than the table says."""
        await _uncancellable(self._record_outcome(request, status, result, error))

    async def _record_outcome(
        self,
        request: JobRequest,
        status: JobStatus,
        result: dict[str, Any] | None,
        error: FailureInfo | None,
    ) -> None:
        self._running_said = True  # a late progress signal must not say `running` again
        attributes: list[SearchAttributeUpdate[Any]] = [JOB_STATUS.value_set(status)]
        if status is JobStatus.COMPLETED:
            attributes.append(JOB_PROGRESS.value_set(100))
        workflow.upsert_search_attributes(attributes)
        await self._record_in_table(request, status, result=result, error=error)

    async def _record_in_table(
        self,
        request: JobRequest,
        status: JobStatus,
        *,
        result: dict[str, Any] | None = None,
        error: FailureInfo | None = None,
    ) -> None:
        """Through a local activity; the reconciler repairs a missed write."""
        info = workflow.info()
        now = workflow.now()
        event = JobEvent(
            job_id=info.workflow_id,
            run_id=info.run_id,
            job_type=self.spec.name,
            project_id=request.project_id,
            params=request.params,
            status=status,
            at=now,
            created_at=info.start_time,
            started_at=now if status is JobStatus.RUNNING else None,
            result=result,
            error=error,
        )
        try:
            await workflow.execute_local_activity_method(
                MirrorActivities.record_job_event,
                event,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=_RECORD_POLICY,
            )
        except (ActivityError, ApplicationError, TimeoutError) as failure:
            # A local activity that runs out of attempts raises its own error (an
            # ApplicationError such as OperationalError), not an ActivityError: an
            # unreachable database must never fail the job it only records.
            workflow.logger.warning("job state not recorded, left to the reconciler: %s", failure)


async def _outcome(work: "asyncio.Task[T]") -> T:
    """The work's result or failure. A workflow cancel reaches this as CancelledError even
    when the work's outcome arrived in the same activation (after a failed workflow task,
    replay delivers both at once): then the outcome wins. Otherwise the activity is told to
    stop, and waited for (`WAIT_CANCELLATION_COMPLETED`): if it ended anyway, that counts."""
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        if not workflow.patched(OUTCOME_WINS_PATCH):
            raise
        _uncancel()
        # Every task made ready by this activation runs before a condition is checked: an
        # outcome that came with the cancel has settled the work's task by then.
        await workflow.wait_condition(lambda: True)
        if not work.done():
            work.cancel()
        return await work


async def _uncancellable(step: Awaitable[T]) -> T:
    """Run `step` to its end even if the workflow is cancelled meanwhile."""
    task = asyncio.ensure_future(step)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not workflow.patched(OUTCOME_WINS_PATCH):
                task.cancel()  # as runs begun earlier did: the step is cancelled with them
                return await task
            _uncancel()


def _uncancel() -> None:
    """A cancel that was caught and overruled no longer counts against the task."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


def _is_cancellation(error: BaseException) -> bool:
    if isinstance(error, asyncio.CancelledError | CancelledError):
        return True
    return isinstance(error, ActivityError) and isinstance(error.cause, CancelledError)
