"""A retry is signal-with-start of the job's workflow: a new run whose history begins with
who retried it and why; a run still going is refused, not doubled."""

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment

from pastools_jobs.contracts import RETRY_SIGNAL, RetryRequest
from pastools_jobs.db.models import Job
from pastools_jobs.temporal import JobLauncher
from tests.support.standins import (
    CASE_BY_TYPE,
    DEADLINE_SECONDS,
    Failure,
    Recorder,
    StandInWork,
    job_worker,
)

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

CASE = CASE_BY_TYPE["probe"]
ALICE = RetryRequest(actor="token 1f2e (alice)", channel="api", reason="file fixed")


def probe_job() -> Job:
    return Job(
        id=f"probe-{uuid.uuid4().hex}",
        type="probe",
        project_id="lifecycle",
        params=CASE.params,
        attempt=1,
        run_timeout_seconds=None,
        submitter_scope=None,
    )


async def test_a_retry_is_a_new_run_that_begins_with_who_and_why(
    workflow_env: WorkflowEnvironment,
) -> None:
    client, task_queue, job = workflow_env.client, f"retry-{uuid.uuid4().hex}", probe_job()
    launcher = JobLauncher(client, task_queue)
    failing = StandInWork(CASE, failure=Failure("SourceUnusable", "line 2 is empty"))
    async with job_worker(client, task_queue, CASE, failing, Recorder()):
        first = await launcher.start(job)
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(
                client.get_workflow_handle(job.id, run_id=first).result(), DEADLINE_SECONDS
            )
    async with job_worker(client, task_queue, CASE, StandInWork(CASE), Recorder()):
        second = await launcher.retry(job, ALICE)
        handle = client.get_workflow_handle(job.id, run_id=second)
        await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert second != first
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    events = [event async for event in handle.fetch_history_events()]
    signalled = events[1]
    assert signalled.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    attributes = signalled.workflow_execution_signaled_event_attributes
    assert attributes.signal_name == RETRY_SIGNAL
    [payload] = await pydantic_data_converter.decode(attributes.input.payloads, [RetryRequest])
    assert payload == ALICE


async def test_a_retry_of_a_run_still_going_is_refused(workflow_env: WorkflowEnvironment) -> None:
    client, task_queue, job = workflow_env.client, f"retry-{uuid.uuid4().hex}", probe_job()
    launcher = JobLauncher(client, task_queue)
    work = StandInWork(CASE, held=True)
    async with job_worker(client, task_queue, CASE, work, Recorder()):
        running = await launcher.start(job)
        await asyncio.wait_for(work.started.wait(), DEADLINE_SECONDS)
        with pytest.raises(WorkflowAlreadyStartedError):
            await launcher.retry(job, ALICE)
        work.release.set()
        handle = client.get_workflow_handle(job.id)
        await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert handle.run_id is None and (await handle.describe()).run_id == running, "no new run"


async def test_a_retry_sent_again_after_its_answer_was_lost_is_the_same_run(
    workflow_env: WorkflowEnvironment,
) -> None:
    """The SDK sends a request again when its answer is lost; the second finds the run the
    first started, open, and must take it for its own, not for a job still running."""
    client, task_queue, job = workflow_env.client, f"retry-{uuid.uuid4().hex}", probe_job()
    launcher = JobLauncher(client, task_queue)
    once = ALICE.model_copy(update={"retry_id": uuid.uuid4().hex})
    failing = StandInWork(CASE, failure=Failure("SourceUnusable", "line 2 is empty"))
    async with job_worker(client, task_queue, CASE, failing, Recorder()):
        first = await launcher.start(job)
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(
                client.get_workflow_handle(job.id, run_id=first).result(), DEADLINE_SECONDS
            )
    work = StandInWork(CASE, held=True)
    async with job_worker(client, task_queue, CASE, work, Recorder()):
        retried = await launcher.retry(job, once)
        await asyncio.wait_for(work.started.wait(), DEADLINE_SECONDS)
        assert await launcher.retry(job, once) == retried, "the same retry, sent again"
        other = once.model_copy(update={"retry_id": uuid.uuid4().hex})
        with pytest.raises(WorkflowAlreadyStartedError):
            await launcher.retry(job, other)
        work.release.set()
        await asyncio.wait_for(
            client.get_workflow_handle(job.id, run_id=retried).result(), DEADLINE_SECONDS
        )
