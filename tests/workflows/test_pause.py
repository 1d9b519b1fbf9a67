"""Pause and resume, in process: the real probe workflow and its real activity (on a
SQLite jobs database) on a worker with the platform's pause hand-over, against the
session's `WorkflowEnvironment`. What is checked is what a user sees: the work stops at
a checkpoint and goes on from it, the job says it is paused (its JobPaused attribute,
what the table is told), and a paused job is still cancelled."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.context import ActivityContext
from activities.items import ItemActivities
from activities.pausing import PauseHandOver
from activities.slots import SlotActivities
from pastools_jobs.config import Settings
from pastools_jobs.contracts import (
    JOB_PAUSED,
    PAUSE_SIGNAL,
    RESUME_SIGNAL,
    JobEvent,
    JobRequest,
    PauseChange,
    PauseRequest,
    queued_attributes,
)
from pastools_jobs.db.engine import Database
from pastools_jobs.db.migrate import upgrade_database
from pastools_jobs.domain import JobStatus
from pastools_jobs.storage import open_storage
from tests.support.standins import DEADLINE_SECONDS, HEARTBEAT_THROTTLE, UNLIMITED
from workflows.probe_job import ProbeJob
from workflows.results import ProbeResult

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

ITEMS = 200
ITEM_MS = 10


class TableSide:
    """What the workflow tells the table: its state changes and its pauses, in order."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.pauses: list[PauseChange] = []
        self.paused = asyncio.Event()

    @activity.defn(name="record_job_event")
    async def record_job_event(self, event: JobEvent) -> None:
        self.events.append(event)

    @activity.defn(name="record_pause")
    async def record_pause(self, change: PauseChange) -> None:
        self.pauses.append(change)
        if change.paused_at is not None:
            self.paused.set()


@pytest.fixture
def context(tmp_path: Path) -> Iterator[ActivityContext]:
    """A jobs database for the probe's progress reports, which find no row and change
    nothing (the reports matter here for their heartbeats, which carry the checkpoint),
    and for the running slots: one job of a project runs at a time."""
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    upgrade_database(url)
    db = Database(url, application_name="pastools-tests")
    settings = Settings(
        data_dir=tmp_path, heartbeat_interval_seconds=0.05, max_running_jobs_per_project=1
    )
    yield ActivityContext(settings=settings, db=db, storage=open_storage(settings))
    db.dispose()


@asynccontextmanager
async def probe_worker(
    client: Client, task_queue: str, context: ActivityContext, table: TableSide
) -> AsyncIterator[None]:
    items, slots = ItemActivities(context), SlotActivities(context)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ProbeJob],
        activities=[
            items.process_items,
            table.record_job_event,
            table.record_pause,
            slots.claim_running_slot,
            slots.release_running_slot,
        ],
        interceptors=[PauseHandOver()],
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
    ):
        yield


async def start_probe(
    client: Client, task_queue: str, *, start_paused: bool = False
) -> WorkflowHandle[Any, ProbeResult]:
    request = JobRequest(
        project_id="pauses",
        params={"items": ITEMS, "item_ms": ITEM_MS},
        row_exists=True,
        attributes_set=True,
        start_paused=start_paused,
    )
    return await client.start_workflow(
        ProbeJob.run,
        request,
        id=f"pause-{uuid.uuid4().hex}",
        task_queue=task_queue,
        search_attributes=queued_attributes("probe", "pauses", paused=start_paused),
    )


async def paused_attribute(handle: WorkflowHandle[Any, Any]) -> bool | None:
    return (await handle.describe()).typed_search_attributes.get(JOB_PAUSED)


async def items_done(client: Client, handle: WorkflowHandle[Any, Any]) -> int:
    """The checkpoint of the work in flight: its last heartbeat's next item."""
    for pending in (await handle.describe()).raw_description.pending_activities:
        if pending.heartbeat_details.payloads:
            [progress] = await client.data_converter.decode(pending.heartbeat_details.payloads)
            return int(progress["checkpoint"]["next_item"])
    return 0


async def until(check: Any, deadline: float = DEADLINE_SECONDS) -> None:
    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), deadline)


async def test_a_paused_job_stops_at_a_checkpoint_and_resumes_from_it(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext
) -> None:
    client, table = workflow_env.client, TableSide()
    async with probe_worker(client, task_queue, context, table):
        handle = await start_probe(client, task_queue)
        await until(lambda: _at_least(client, handle, ITEMS // 10))

        await handle.signal(PAUSE_SIGNAL, PauseRequest(actor="token t1 (ops)", reason="night"))
        await asyncio.wait_for(table.paused.wait(), DEADLINE_SECONDS)
        stopped_at = table.pauses[-1]
        await until(lambda: _paused(handle))
        description = await handle.describe()
        assert not description.raw_description.pending_activities, "the work did not stop"

        await handle.signal(RESUME_SIGNAL)
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert stopped_at.paused_at is not None and stopped_at.job_id == handle.id
    assert result.items == ITEMS
    assert ITEMS // 10 <= result.resumed_from < ITEMS, "the resumed work started over"
    assert [change.paused_at is None for change in table.pauses] == [False, True]
    assert await paused_attribute(handle) is False
    assert [event.status for event in table.events] == [JobStatus.COMPLETED]


async def test_a_pause_sent_without_input_as_from_the_temporal_cli_pauses_too(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext
) -> None:
    client, table = workflow_env.client, TableSide()
    async with probe_worker(client, task_queue, context, table):
        handle = await start_probe(client, task_queue)
        await handle.signal(PAUSE_SIGNAL)
        await asyncio.wait_for(table.paused.wait(), DEADLINE_SECONDS)
        await until(lambda: _paused(handle))
        await handle.signal(RESUME_SIGNAL)
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert result.items == ITEMS


async def test_a_paused_job_is_still_cancelled(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext
) -> None:
    client, table = workflow_env.client, TableSide()
    async with probe_worker(client, task_queue, context, table):
        handle = await start_probe(client, task_queue)
        await until(lambda: _at_least(client, handle, 1))
        await handle.signal(PAUSE_SIGNAL)
        await asyncio.wait_for(table.paused.wait(), DEADLINE_SECONDS)

        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert isinstance(failed.value.cause, CancelledError)
    assert [event.status for event in table.events] == [JobStatus.CANCELLED]
    assert await paused_attribute(handle) is False, "a cancelled job still says it is paused"


@pytest.mark.parametrize("first", ["pause", "cancel"])
async def test_a_pause_and_a_cancel_sent_together_cancel_the_job(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext, first: str
) -> None:
    """Whichever comes first, before the work has stopped: the job ends cancelled, not
    paused and not failed."""
    client, table = workflow_env.client, TableSide()
    async with probe_worker(client, task_queue, context, table):
        handle = await start_probe(client, task_queue)
        await until(lambda: _at_least(client, handle, 1))
        if first == "pause":
            await handle.signal(PAUSE_SIGNAL)
            await handle.cancel()
        else:
            await handle.cancel()
            await handle.signal(PAUSE_SIGNAL)
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert isinstance(failed.value.cause, CancelledError)
    assert [event.status for event in table.events] == [JobStatus.CANCELLED]


async def test_a_job_waiting_for_a_running_slot_pauses_at_once(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext
) -> None:
    """One job of the project runs at a time: the second, waiting for the slot, is paused
    while the first still runs, and goes on once resumed."""
    client, table = workflow_env.client, TableSide()
    async with probe_worker(client, task_queue, context, table):
        first = await start_probe(client, task_queue)
        await until(lambda: _at_least(client, first, 1))
        second = await start_probe(client, task_queue)
        await second.signal(PAUSE_SIGNAL)

        await until(lambda: _paused(second))
        assert (await first.describe()).status == WorkflowExecutionStatus.RUNNING
        assert any(c.job_id == second.id and c.paused_at for c in table.pauses)
        await second.signal(RESUME_SIGNAL)
        results = await asyncio.wait_for(
            asyncio.gather(first.result(), second.result()), DEADLINE_SECONDS
        )

    assert [result.items for result in results] == [ITEMS, ITEMS]


async def test_a_job_submitted_to_a_held_project_waits_paused_before_its_work(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext
) -> None:
    client, table = workflow_env.client, TableSide()
    async with probe_worker(client, task_queue, context, table):
        handle = await start_probe(client, task_queue, start_paused=True)
        await asyncio.wait_for(table.paused.wait(), DEADLINE_SECONDS)
        await until(lambda: _paused(handle))
        history = [event async for event in handle.fetch_history_events()]
        assert not any(
            event.HasField("activity_task_scheduled_event_attributes") for event in history
        )

        await handle.signal(RESUME_SIGNAL)
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert result == ProbeResult(items=ITEMS, resumed_from=0)


async def test_a_job_waiting_for_a_worker_slot_pauses_at_once(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext
) -> None:
    """No worker runs the work (every slot taken): the queued work is withdrawn and the
    job says it is paused; on resume it starts from the beginning."""
    client, table = workflow_env.client, TableSide()
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ProbeJob],
        activities=[table.record_job_event, table.record_pause, *UNLIMITED],
        no_remote_activities=True,
    ):
        handle = await start_probe(client, task_queue)
        await handle.signal(PAUSE_SIGNAL)
        await asyncio.wait_for(table.paused.wait(), DEADLINE_SECONDS)
        await until(lambda: _paused(handle))
        await handle.signal(RESUME_SIGNAL)
    async with probe_worker(client, task_queue, context, table):
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert result == ProbeResult(items=ITEMS, resumed_from=0)


async def test_a_paused_job_gives_its_running_slot_to_the_next_job_of_its_project(
    workflow_env: WorkflowEnvironment, task_queue: str, context: ActivityContext
) -> None:
    """One job of the project may run at a time: the second waits until the first is
    paused, runs to its end meanwhile, and the first goes on once resumed."""
    client, table = workflow_env.client, TableSide()
    async with probe_worker(client, task_queue, context, table):
        first = await start_probe(client, task_queue)
        await until(lambda: _at_least(client, first, 1))
        second = await start_probe(client, task_queue)
        await first.signal(PAUSE_SIGNAL)

        second_result = await asyncio.wait_for(second.result(), DEADLINE_SECONDS)
        assert (await first.describe()).status == WorkflowExecutionStatus.RUNNING
        await first.signal(RESUME_SIGNAL)
        first_result = await asyncio.wait_for(first.result(), DEADLINE_SECONDS)

    assert second_result == ProbeResult(items=ITEMS, resumed_from=0)
    assert first_result.resumed_from > 0


async def _at_least(client: Client, handle: WorkflowHandle[Any, Any], items: int) -> bool:
    return await items_done(client, handle) >= items


async def _paused(handle: WorkflowHandle[Any, Any]) -> bool:
    """JobPaused says so (written with the workflow task that recorded the pause, a moment
    after the table was told)."""
    return await paused_attribute(handle) is True
