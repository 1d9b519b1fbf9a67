"""A cancel that reaches a job once its work has ended loses: the workflow closes as the
work ended, and records exactly that, however the cancel and the outcome meet in Temporal's
history (one workflow task, or a task that failed and was replayed)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.items import ItemsWork
from pastools_jobs.contracts import JobEvent, JobRequest, queued_attributes
from pastools_jobs.domain import JobStatus
from tests.support.standins import UNLIMITED
from workflows.probe_job import ProbeJob
from workflows.results import ProbeResult

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

DEADLINE_SECONDS = 30
RESULT = ProbeResult(items=3, resumed_from=0)


class HeldWork:
    """The probe's work, which ends only when the test lets it."""

    def __init__(self, held: bool = True) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        if not held:
            self.release.set()

    @activity.defn(name="process_items")
    async def process_items(self, work: ItemsWork) -> ProbeResult:
        self.started.set()
        await self.release.wait()
        return ProbeResult(items=work.items, resumed_from=0)


class Recorder:
    """The table's side of the workflow: every state it records, in order; the recording of
    `hold` waits until the test lets it finish."""

    def __init__(self, hold: JobStatus | None = None) -> None:
        self.statuses: list[JobStatus] = []
        self.hold = hold
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name="record_job_event")
    async def record_job_event(self, event: JobEvent) -> None:
        if event.status is self.hold:
            self.holding.set()
            await self.release.wait()
        self.statuses.append(event.status)


@asynccontextmanager
async def workflow_worker(
    client: Client, task_queue: str, recorder: Recorder
) -> AsyncIterator[None]:
    """Workflow tasks and the recording local activity only: the work runs elsewhere."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ProbeJob],
        activities=[recorder.record_job_event, *UNLIMITED],
        no_remote_activities=True,
    ):
        yield


async def start_probe(client: Client, task_queue: str) -> WorkflowHandle[ProbeJob, ProbeResult]:
    return await client.start_workflow(
        ProbeJob.run,
        JobRequest(project_id="races", params={"items": 3}, row_exists=True, attributes_set=True),
        id=f"race-{uuid.uuid4().hex}",
        task_queue=task_queue,
        search_attributes=queued_attributes("probe", "races"),
    )


async def in_history(
    handle: WorkflowHandle[ProbeJob, ProbeResult], event_type: EventType.ValueType
) -> None:
    async def seen() -> None:
        while event_type not in [event.event_type async for event in handle.fetch_history_events()]:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(seen(), DEADLINE_SECONDS)


async def test_cancel_in_the_task_that_brings_the_works_result_loses_to_it(
    client: Client, task_queue: str
) -> None:
    """The work completes and the cancel is requested while no workflow worker runs: both
    reach the workflow in one activation."""
    work, recorder = HeldWork(), Recorder()
    async with Worker(client, task_queue=task_queue, activities=[work.process_items]):
        async with workflow_worker(client, task_queue, recorder):
            handle = await start_probe(client, task_queue)
            await asyncio.wait_for(work.started.wait(), DEADLINE_SECONDS)
        work.release.set()
        await in_history(handle, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        await handle.cancel()
        await in_history(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
        async with workflow_worker(client, task_queue, recorder):
            result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert result == RESULT
    assert recorder.statuses == [JobStatus.COMPLETED]


async def test_cancel_while_the_completion_is_recorded_loses_to_it(
    client: Client, task_queue: str
) -> None:
    """The cancel arrives during the workflow task that records the completion: that task
    fails and is replayed with the work's result and the cancel in one activation."""
    work, recorder = HeldWork(held=False), Recorder(hold=JobStatus.COMPLETED)
    async with (
        Worker(client, task_queue=task_queue, activities=[work.process_items]),
        workflow_worker(client, task_queue, recorder),
    ):
        handle = await start_probe(client, task_queue)
        await asyncio.wait_for(recorder.holding.wait(), DEADLINE_SECONDS)
        await handle.cancel()
        await in_history(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED)
        recorder.release.set()
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert result == RESULT
    assert set(recorder.statuses) == {JobStatus.COMPLETED}
