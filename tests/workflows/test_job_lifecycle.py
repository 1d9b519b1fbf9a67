"""Every job type's lifecycle, in process: the real workflow class on an in-process
worker with its activities replaced by stand-ins (`tests/support/standins.py`), against
the session's `WorkflowEnvironment`. What is checked is what a user sees: how the
workflow closes, its result or error message, and the states the jobs table was told.

The real-server counterparts are `tests/integration/` (whole stack) and
`test_cancel_races.py` (the cancel/complete race, probe)."""

import asyncio
import uuid
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from pastools_jobs.contracts import JOB_PROGRESS, JOB_STATUS, FailureInfo
from pastools_jobs.domain import JobStatus
from pastools_jobs.job_catalog import JOB_TYPES
from tests.support.standins import (
    CASE_BY_TYPE,
    DEADLINE_SECONDS,
    JOB_CASES,
    Failure,
    JobCase,
    Recorder,
    StandInWork,
    in_history,
    job_worker,
    start_job,
)

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

BY_TYPE = pytest.mark.parametrize("case", JOB_CASES, ids=[case.job_type for case in JOB_CASES])


def test_every_job_type_has_a_case() -> None:
    """So that every lifecycle test below runs on every job type."""
    assert sorted(case.job_type for case in JOB_CASES) == sorted(spec.name for spec in JOB_TYPES)


@pytest.fixture
def task_queue() -> str:
    return f"lifecycle-{uuid.uuid4().hex}"


async def closed(handle: WorkflowHandle[Any, Any]) -> Any:
    """The workflow's result, with a deadline."""
    return await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)


async def close_status(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionStatus | None:
    return (await handle.describe()).status


async def failure_of(handle: WorkflowHandle[Any, Any]) -> BaseException:
    with pytest.raises(WorkflowFailureError) as failed:
        await closed(handle)
    assert failed.value.cause is not None
    return failed.value.cause


@BY_TYPE
@pytest.mark.parametrize("from_api", [True, False], ids=["api", "cli"])
async def test_a_job_completes_with_its_works_result(
    workflow_env: WorkflowEnvironment, task_queue: str, case: JobCase, from_api: bool
) -> None:
    client = workflow_env.client
    work, recorder = StandInWork(case), Recorder()
    async with job_worker(client, task_queue, case, work, recorder):
        handle = await start_job(client, case, task_queue, from_api=from_api)
        result = await closed(handle)

    assert result == case.spec.result_model.model_validate(case.result)
    # A job the API submitted has its row already; one started from the CLI records it.
    expected = [JobStatus.COMPLETED] if from_api else [JobStatus.RUNNING, JobStatus.COMPLETED]
    assert recorder.statuses == expected
    assert recorder.events[-1].result == case.result
    assert recorder.events[-1].error is None
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    attributes = description.typed_search_attributes
    assert attributes.get(JOB_STATUS) == JobStatus.COMPLETED.value
    assert attributes.get(JOB_PROGRESS) == 100


def failing_steps() -> list[Any]:
    """Each step of each job type that reports a mistake the user can fix."""
    steps = [pytest.param(case, "work", id=f"{case.job_type}-work") for case in JOB_CASES]
    steps += [
        pytest.param(case, "snapshot", id=f"{case.job_type}-snapshot")
        for case in JOB_CASES
        if case.snapshot_failure is not None
    ]
    return steps


@pytest.mark.parametrize(("case", "step"), failing_steps())
async def test_a_domain_failure_fails_the_job_with_its_message(
    workflow_env: WorkflowEnvironment, task_queue: str, case: JobCase, step: str
) -> None:
    client = workflow_env.client
    failure: Failure | None = case.failure if step == "work" else case.snapshot_failure
    assert failure is not None
    work = StandInWork(
        case,
        failure=failure if step == "work" else None,
        snapshot_failure=failure if step == "snapshot" else None,
    )
    recorder = Recorder()
    async with job_worker(client, task_queue, case, work, recorder):
        handle = await start_job(client, case, task_queue)
        cause = await failure_of(handle)

    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.message) == (failure.type, failure.message)
    assert cause.non_retryable
    assert await close_status(handle) == WorkflowExecutionStatus.FAILED
    assert recorder.statuses == [JobStatus.FAILED]
    assert recorder.events[-1].error == FailureInfo(
        type=failure.type, message=failure.message, details=failure.details
    )
    # Non-retryable: the work ran at most once, and not at all if its snapshot failed.
    assert work.calls == (1 if step == "work" else 0)


@BY_TYPE
@pytest.mark.parametrize("from_api", [True, False], ids=["api", "cli"])
async def test_a_cancel_before_the_work_starts_cancels_the_job(
    workflow_env: WorkflowEnvironment, task_queue: str, case: JobCase, from_api: bool
) -> None:
    """The cancel is requested before any worker has seen the job: it arrives in the
    workflow's first activation."""
    client = workflow_env.client
    work, recorder = StandInWork(case), Recorder()
    handle = await start_job(client, case, task_queue, from_api=from_api)
    await handle.cancel()
    async with job_worker(client, task_queue, case, work, recorder):
        cause = await failure_of(handle)

    assert isinstance(cause, CancelledError)
    assert await close_status(handle) == WorkflowExecutionStatus.CANCELED
    assert recorder.statuses[-1] is JobStatus.CANCELLED
    assert recorder.events[-1].error == FailureInfo(
        type="Cancelled", message="The job was cancelled."
    )
    assert work.calls == 0


@BY_TYPE
async def test_a_cancel_while_the_work_waits_for_a_worker_cancels_the_job(
    workflow_env: WorkflowEnvironment, task_queue: str, case: JobCase
) -> None:
    """The work is scheduled, but no worker has a free activity slot to start it."""
    client = workflow_env.client
    work, recorder = StandInWork(case), Recorder()
    async with job_worker(client, task_queue, case, work, recorder, runs_activities=False):
        handle = await start_job(client, case, task_queue)
        await in_history(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        await handle.cancel()
        cause = await failure_of(handle)

    assert isinstance(cause, CancelledError)
    assert await close_status(handle) == WorkflowExecutionStatus.CANCELED
    assert recorder.statuses == [JobStatus.CANCELLED]
    assert work.calls == 0


@BY_TYPE
async def test_a_cancel_during_the_work_stops_it_and_cancels_the_job(
    workflow_env: WorkflowEnvironment, task_queue: str, case: JobCase
) -> None:
    client = workflow_env.client
    work, recorder = StandInWork(case, held=True), Recorder()
    async with job_worker(client, task_queue, case, work, recorder):
        handle = await start_job(client, case, task_queue)
        await asyncio.wait_for(work.started.wait(), DEADLINE_SECONDS)
        await handle.cancel()
        cause = await failure_of(handle)

    assert isinstance(cause, CancelledError)
    assert work.cancelled.is_set(), "the activity was not told to stop"
    assert await close_status(handle) == WorkflowExecutionStatus.CANCELED
    assert recorder.statuses == [JobStatus.CANCELLED]


@BY_TYPE
async def test_a_cancel_while_the_completion_is_recorded_loses_to_it(
    workflow_env: WorkflowEnvironment, task_queue: str, case: JobCase
) -> None:
    """The cancel arrives during the workflow task that records the completion: that task
    fails and is replayed with the work's result and the cancel in one activation; the
    job closes as its work ended, as the table was told."""
    client = workflow_env.client
    work, recorder = StandInWork(case), Recorder(hold=JobStatus.COMPLETED)
    async with job_worker(client, task_queue, case, work, recorder):
        handle = await start_job(client, case, task_queue)
        await asyncio.wait_for(recorder.holding.wait(), DEADLINE_SECONDS)
        # Accepted once this returns, the cancel waits in Temporal until that task ends and
        # makes its completion fail. (Waiting to see it in the history would wait 8 s for
        # the task's heartbeat, after which the cancel meets the record in flight instead.)
        await handle.cancel()
        recorder.release.set()
        result = await closed(handle)

    assert result == case.spec.result_model.model_validate(case.result)
    assert await close_status(handle) == WorkflowExecutionStatus.COMPLETED
    assert set(recorder.statuses) == {JobStatus.COMPLETED}


@BY_TYPE
async def test_a_record_that_fails_does_not_fail_the_job(
    workflow_env: WorkflowEnvironment, task_queue: str, case: JobCase
) -> None:
    """Every write to the table fails (started from the CLI, the job records both its
    start and its end): the job still completes; the reconciler repairs the row."""
    client = workflow_env.client
    unusable = ApplicationError(
        "the jobs table refused the row", type="IntegrityError", non_retryable=True
    )
    work, recorder = StandInWork(case), Recorder(failure=unusable)
    async with job_worker(client, task_queue, case, work, recorder):
        handle = await start_job(client, case, task_queue, from_api=False)
        result = await closed(handle)

    assert result == case.spec.result_model.model_validate(case.result)
    assert await close_status(handle) == WorkflowExecutionStatus.COMPLETED
    assert recorder.attempts == 2  # the start and the end, each tried once
    assert recorder.events == []


async def test_a_record_that_runs_out_of_retries_does_not_fail_the_job(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    """As with an unreachable database: a retryable error, each of the record's attempts
    (about 3 s of backoff in all)."""
    client = workflow_env.client
    case = CASE_BY_TYPE["probe"]
    unreachable = ApplicationError("could not connect to the database", type="OperationalError")
    work, recorder = StandInWork(case), Recorder(failure=unreachable)
    async with job_worker(client, task_queue, case, work, recorder):
        handle = await start_job(client, case, task_queue)
        result = await closed(handle)

    assert result == case.spec.result_model.model_validate(case.result)
    assert await close_status(handle) == WorkflowExecutionStatus.COMPLETED
    assert recorder.attempts == 5  # lifecycle's _RECORD_POLICY: maximum_attempts=5
