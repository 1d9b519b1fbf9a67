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
    RetryState,
    TimeoutError,
)

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from activities.context import ActivityGroup
    from activities.holds import HoldActivities, HoldQuestion
    from activities.mirror import MirrorActivities
    from activities.pausing import WORK_PAUSED
    from pastools_jobs.contracts import (
        JOB_PAUSED,
        JOB_PROGRESS,
        JOB_STATUS,
        JOB_TYPE,
        PAUSE_SIGNAL,
        PAUSING_QUERY,
        PROGRESS_SIGNAL,
        PROJECT_ID,
        RESUME_SIGNAL,
        RETRY_SIGNAL,
        FailureInfo,
        JobEvent,
        JobRequest,
        PauseChange,
        PauseRequest,
        Progress,
        RetryRequest,
        Work,
    )
    from pastools_jobs.domain import JobStatus
    from pastools_jobs.failures import describe_failure
    from pastools_jobs.job_spec import JobTypeSpec, P, R
    from workflows.running_slot import RunningSlotHolder
    from workflows.shielding import uncancel, uncancellable
    from workflows.work_options import WORK_RETRY_POLICY, work_activity_options

T = TypeVar("T")
W = TypeVar("W")
WorkT = TypeVar("WorkT", bound=BaseModel)

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
        self._pause_wanted = False
        """A pause was asked for and no resume since: the work stops, or does not start."""
        self._paused_said = False
        """JobPaused and the row say the job is paused."""
        self._work: asyncio.Task[Any] | None = None
        """The work activity in flight, which a pause stops."""
        self._stopping_for_pause = False
        """The work in flight was told to stop for a pause (`PAUSING_QUERY`)."""
        self._outcome_decided = False
        """The job is recording how it ended: a pause comes too late."""
        self._cancelled = False
        """The job itself was cancelled: whatever stops its work is that cancel."""
        self._project_id = ""

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

    @workflow.signal(name=PAUSE_SIGNAL)
    def pause(self, request: PauseRequest | None = None) -> None:
        """Stop the work at its next checkpoint (its last whole batch) and wait for a
        resume; a job that has not started its work waits before it. A job that is
        already ending ends."""
        if self._outcome_decided or self._cancelled:
            return
        _log_request("paused", request)
        self._pause_wanted = True
        running = [work for work in self._in_flight() if not work.done()]
        if running and not self._stopping_for_pause:
            self._stopping_for_pause = True
            for work in running:
                work.cancel()

    def _in_flight(self) -> list["asyncio.Task[Any]"]:
        """The work activities running, which a pause stops (a partitioned job has several)."""
        return [self._work] if self._work is not None else []

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self, request: PauseRequest | None = None) -> None:
        if self._pause_wanted:
            _log_request("resumed", request)
        self._pause_wanted = False

    def stops_waiting_for_a_slot(self) -> bool:
        return self._pause_wanted

    @workflow.query(name=PAUSING_QUERY)
    def pausing(self) -> bool:
        """Whether the work in flight was told to stop for a pause, not for a cancel."""
        return self._stopping_for_pause and not self._cancelled

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

    async def run_work(self, activity: Callable[[Any, WorkT], Awaitable[T]], work: WorkT) -> T:
        """Run the type's long activity (heartbeats, retries, real cancellation) to its
        outcome: a cancel requested once that outcome has reached the workflow loses to it.

        A pause stops the activity at its next checkpoint; on resume a new activity goes
        on from that checkpoint (`Work.resume_from`). A job waiting paused is cancelled
        like any other. The activity runs in one of its project's running slots (when the
        project has a limit); a paused job gives its slot back."""
        while True:
            if self._pause_wanted:
                await self._wait_paused()
            async with self.running_slot(self._project_id) as granted:
                if not granted or self._pause_wanted:
                    continue  # paused while it waited for a slot: the slot goes back
                handle = workflow.start_activity_method(activity, work, **work_activity_options())
                self._work = handle
                try:
                    return await self._outcome(handle)
                except (asyncio.CancelledError, ActivityError) as error:
                    if self._cancelled and _is_work_paused(error):
                        # It answered "a pause" just before the job itself was cancelled.
                        raise asyncio.CancelledError() from error
                    stopped_at = self._paused_at(handle, error)
                    if stopped_at is _NOT_PAUSED:
                        raise
                    if isinstance(stopped_at, Progress) and isinstance(work, Work):
                        # Work of another model (a plugin's) starts over on resume.
                        work = work.model_copy(update={"resume_from": stopped_at})
                finally:
                    self._work = None
                    self._stopping_for_pause = False

    async def _outcome(self, work: "asyncio.Task[T]") -> T:
        """The work's result or failure. A workflow cancel reaches this as CancelledError even
        when the work's outcome arrived in the same activation (after a failed workflow task,
        replay delivers both at once): then the outcome wins. Otherwise the activity is told to
        stop, and waited for (`WAIT_CANCELLATION_COMPLETED`): if it ended anyway, that counts."""
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if work.cancelled():
                raise  # the work itself was stopped (a pause), not the workflow
            if not workflow.patched(OUTCOME_WINS_PATCH):
                raise
            self._cancelled = True
            uncancel()
            # Every task made ready by this activation runs before a condition is checked: an
            # outcome that came with the cancel has settled the work's task by then.
            await workflow.wait_condition(lambda: True)
            if not work.done():
                work.cancel()
            return await work

    def _paused_at(
        self, handle: "asyncio.Task[Any]", error: BaseException
    ) -> "Progress | _NotPaused | None":
        """Where the work stopped for a pause (None: where it was told to start, for work
        stopped before its first checkpoint), or `_NOT_PAUSED` for any other end."""
        if not self._stopping_for_pause or self._cancelled:
            return _NOT_PAUSED
        if isinstance(error, asyncio.CancelledError):
            # Stopped in the very activation its outcome arrived in, so that outcome is
            # lost: the work goes on from where it last started. A cancel of the job
            # itself is still pending on this task, and wins.
            task = asyncio.current_task()
            if not handle.cancelled() or (task is not None and task.cancelling()):
                return _NOT_PAUSED
            return None
        cause = error.cause if isinstance(error, ActivityError) else None
        if _is_work_paused(error):
            assert isinstance(cause, ApplicationError)
            return Progress.model_validate(cause.details[0]) if cause.details else None
        if isinstance(cause, CancelledError):
            return None  # stopped before it started, or between two attempts
        if isinstance(error, ActivityError) and error.retry_state == RetryState.CANCEL_REQUESTED:
            return None  # it failed otherwise (its worker stopping) as it was told to stop
        return _NOT_PAUSED

    async def _wait_paused(self) -> None:
        """Say the job is paused, wait for a resume, say it goes on."""
        await self._say_paused(True)
        await workflow.wait_condition(lambda: not self._pause_wanted)
        await self._say_paused(False)

    async def _say_paused(self, paused: bool) -> None:
        self._paused_said = paused
        workflow.upsert_search_attributes([JOB_PAUSED.value_set(paused)])
        info = workflow.info()
        change = PauseChange(
            job_id=info.workflow_id,
            run_id=info.run_id,
            paused_at=workflow.now() if paused else None,
        )
        await _tell_table(MirrorActivities.record_pause, change, "pause", cancellable=True)

    async def run_job(self, request: JobRequest) -> R:
        job = JobContext(request.project_id, request.scope)
        self._pause_wanted = self._pause_wanted or request.start_paused
        self._project_id = request.project_id
        try:
            await self._start(request)
            if request.schedule_id is not None and not self._pause_wanted:
                self._pause_wanted = await self._held(request)
            result = await self.execute(job, self._parse(request))
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

    async def _held(self, request: JobRequest) -> bool:
        """Whether the project or type of a schedule's run is held: the API asks at
        submission, a schedule cannot. A database that cannot answer holds nothing."""
        question = HoldQuestion(project_id=request.project_id, job_type=self.spec.name)
        try:
            return await workflow.execute_local_activity_method(
                HoldActivities.is_held,
                question,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=_RECORD_POLICY,
            )
        except (ActivityError, ApplicationError, TimeoutError) as failure:
            if _is_cancellation(failure):
                raise
            workflow.logger.warning("could not learn whether the job is held: %s", failure)
            return False

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
        await uncancellable(
            self._record_outcome(request, status, result, error),
            # as runs begun earlier did: the step is cancelled with them
            unless=lambda: not workflow.patched(OUTCOME_WINS_PATCH),
        )

    async def _record_outcome(
        self,
        request: JobRequest,
        status: JobStatus,
        result: dict[str, Any] | None,
        error: FailureInfo | None,
    ) -> None:
        self._running_said = True  # a late progress signal must not say `running` again
        self._outcome_decided = True
        attributes: list[SearchAttributeUpdate[Any]] = [JOB_STATUS.value_set(status)]
        if status is JobStatus.COMPLETED:
            attributes.append(JOB_PROGRESS.value_set(100))
        if self._paused_said:  # cancelled while paused: it is paused no more
            attributes.append(JOB_PAUSED.value_set(False))
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
            schedule_id=request.schedule_id,
        )
        await _tell_table(MirrorActivities.record_job_event, event, "job state")


async def _tell_table(
    record: Callable[[Any, W], Awaitable[None]], change: W, what: str, *, cancellable: bool = False
) -> None:
    """Write `change` to the job's row through a local activity. A local activity that runs
    out of attempts raises its own error (an ApplicationError such as OperationalError),
    not an ActivityError: an unreachable database must never fail the job it only
    records (the reconciler repairs a missed job state; a missed pause stays until the
    next pause or resume). A `cancellable` write cut short by a cancel of the job is
    that cancel."""
    try:
        await workflow.execute_local_activity_method(
            record,
            change,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=_RECORD_POLICY,
        )
    except (ActivityError, ApplicationError, TimeoutError) as failure:
        if cancellable and _is_cancellation(failure):
            raise
        workflow.logger.warning("%s not recorded: %s", what, failure)


class _NotPaused:
    """The work ended otherwise than stopped for a pause."""


_NOT_PAUSED = _NotPaused()


def _log_request(what: str, request: PauseRequest | None) -> None:
    if request is None or request.actor is None:
        workflow.logger.info("%s by a signal", what)
        return
    reason = f": {request.reason}" if request.reason else ""
    workflow.logger.info("%s by %s via %s%s", what, request.actor, request.channel, reason)


def _is_work_paused(error: BaseException) -> bool:
    cause = error.cause if isinstance(error, ActivityError) else None
    return isinstance(cause, ApplicationError) and cause.type == WORK_PAUSED


def _is_cancellation(error: BaseException) -> bool:
    if isinstance(error, asyncio.CancelledError | CancelledError):
        return True
    return isinstance(error, ActivityError) and isinstance(error.cause, CancelledError)
