"""A big import's partitions, in process: the real import workflow over stand-in
activities registered under the real names. What is checked is what keeps the project's
records whole: a cancel stops every partition running and discards the staged rows
without moving any, and so does a partition that fails; the move comes only after every
partition has staged its range, and once it has begun, a cancel comes too late."""

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.import_planning import ImportPlan
from activities.importing import ImportWork
from pastools_jobs.contracts import JobEvent, JobRequest, queued_attributes
from pastools_jobs.domain import JobStatus
from pastools_jobs.partitions import (
    ByteRange,
    MergeArtifacts,
    Partition,
    PartitionPlan,
    partition_task_queue,
)
from tests.support.standins import DEADLINE_SECONDS, HEARTBEAT_THROTTLE, UNLIMITED
from workflows.import_job import ImportJob
from workflows.results import ImportResult

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

FILE_BYTES = 300
"""The stand-in source's size: three partitions of 100 bytes."""


@dataclass
class ImportParts:
    """Stand-ins of the import's activities, and what they were asked."""

    window: int
    fail: int | None = None
    """This partition fails, not retryably (a bad row with on_error=fail)."""
    partitions_held: bool = True
    """The partitions run until cancelled."""
    hold_merge: bool = False
    """The merge of the rejected rows runs until `may_end` is set (or it is cancelled)."""
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    may_end: asyncio.Event = field(default_factory=asyncio.Event)
    running: set[int] = field(default_factory=set)
    staged: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    moved: int = 0
    discarded: int = 0
    events: list[JobEvent] = field(default_factory=list)

    def all_running(self, count: int) -> bool:
        return len(self.running) == count

    def activities(self) -> list[Any]:
        @activity.defn(name="plan_import")
        async def plan(work: ImportWork) -> ImportPlan:
            bounds = range(0, FILE_BYTES + 1, FILE_BYTES // 3)
            partitions = [
                Partition(index=i, count=3, job_total=FILE_BYTES, bytes=ByteRange(start=a, end=b))
                for i, (a, b) in enumerate(itertools.pairwise(bounds))
            ]
            return ImportPlan(
                plan=PartitionPlan(partitions=partitions, window=self.window), work=work
            )

        @activity.defn(name="import_records")
        async def stage(work: ImportWork) -> ImportResult:
            assert work.partition is not None, "the whole file in one activity"
            index = work.partition.index
            self.running.add(index)
            try:
                if index == self.fail:
                    raise ApplicationError("line 250: 'id' is empty", non_retryable=True)
                while self.partitions_held and self.fail is None:
                    activity.heartbeat()
                    await asyncio.sleep(0.02)
            except asyncio.CancelledError:
                self.stopped.append(index)
                raise
            finally:
                self.running.discard(index)
            self.staged.append(index)
            return _result(work, imported=10)

        @activity.defn(name="move_staged_import")
        async def move(work: ImportWork) -> ImportResult:
            self.moved += 1
            rejected = {"rejected_rows": "rejected-rows.last.jsonl", "rejected_written": 1}
            return _result(work, imported=0).model_copy(update=rejected)

        @activity.defn(name="merge_artifacts")
        async def merge(_merge: MergeArtifacts) -> int:
            if self.hold_merge:
                await self.held()
            return 1

        @activity.defn(name="discard_staged_import")
        async def discard(_work: ImportWork) -> None:
            self.discarded += 1

        @activity.defn(name="record_job_event")
        async def record_job_event(event: JobEvent) -> None:
            self.events.append(event)

        return [plan, stage, move, merge, discard, record_job_event, *UNLIMITED]

    async def held(self) -> None:
        """Until `may_end` is set, heartbeating: a cancel would stop it."""
        self.holding.set()
        while not self.may_end.is_set():
            activity.heartbeat()
            await asyncio.sleep(0.02)


def _result(work: ImportWork, imported: int) -> ImportResult:
    return ImportResult(
        source=work.source,
        format="csv",
        imported=imported,
        skipped=0,
        errors=[],
        resumed_from_row=0,
    )


@asynccontextmanager
async def import_workers(
    client: Client, task_queue: str, parts: ImportParts
) -> AsyncIterator[None]:
    """The job's worker, and one serving its partitions' queue."""
    options: dict[str, Any] = {
        "activities": parts.activities(),
        "max_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
        "default_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
    }
    async with (
        Worker(client, task_queue=task_queue, workflows=[ImportJob], **options),
        Worker(client, task_queue=partition_task_queue(task_queue), **options),
    ):
        yield


async def start_import(client: Client, task_queue: str) -> WorkflowHandle[Any, Any]:
    params = {"source": "big.csv", "key_column": "id", "on_error": "fail"}
    request = JobRequest(project_id="big", params=params, row_exists=True, attributes_set=True)
    return await client.start_workflow(
        ImportJob.run,
        request,
        id=f"import-parts-{uuid.uuid4().hex}",
        task_queue=task_queue,
        search_attributes=queued_attributes("import", "big"),
    )


async def until(check: Any) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), DEADLINE_SECONDS)


async def test_a_cancel_stops_every_partition_and_discards_the_staged_rows(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = workflow_env.client
    parts = ImportParts(window=2)
    async with import_workers(client, task_queue, parts):
        handle = await start_import(client, task_queue)
        await until(lambda: parts.all_running(2))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert isinstance(failed.value.cause, CancelledError)
    assert sorted(parts.stopped) == [0, 1]
    assert parts.staged == [], "a partition started after the cancel"
    assert (parts.moved, parts.discarded) == (0, 1), "staged rows moved, or left behind"
    assert [event.status for event in parts.events] == [JobStatus.CANCELLED]


async def test_a_failing_partition_discards_the_staged_rows_and_fails_the_job(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = workflow_env.client
    parts = ImportParts(window=3, fail=2)
    async with import_workers(client, task_queue, parts):
        handle = await start_import(client, task_queue)
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert (parts.moved, parts.discarded) == (0, 1)
    [event] = parts.events
    assert event.status == JobStatus.FAILED
    assert event.error is not None and "line 250" in event.error.message


async def test_a_cancel_after_the_move_comes_too_late_and_the_import_completes(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Once the move has committed, the records have changed: the job must not then say
    it was cancelled. The cancel arrives during the merge of the rejected rows that
    follows the move (during the move itself, the activity decides: see
    tests/unit/test_import_staging.py)."""
    client = workflow_env.client
    parts = ImportParts(window=3, partitions_held=False, hold_merge=True)
    async with import_workers(client, task_queue, parts):
        handle = await start_import(client, task_queue)
        await asyncio.wait_for(parts.holding.wait(), DEADLINE_SECONDS)
        await handle.cancel()
        await asyncio.wait_for(cancel_handled(handle), DEADLINE_SECONDS)
        parts.may_end.set()
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert result.imported == 3 * 10  # an upsert counts the rows its partitions staged
    assert (parts.moved, parts.discarded) == (1, 0)
    assert [event.status for event in parts.events] == [JobStatus.COMPLETED]


async def cancel_handled(handle: WorkflowHandle[Any, Any]) -> None:
    """Until a workflow task completed after the cancel request: the workflow has heard it."""
    while True:
        kinds = [event.event_type async for event in handle.fetch_history_events()]
        if CANCEL_REQUESTED in kinds and TASK_COMPLETED in kinds[kinds.index(CANCEL_REQUESTED) :]:
            return
        await asyncio.sleep(0.05)


CANCEL_REQUESTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
TASK_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
