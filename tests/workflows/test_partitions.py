"""A big job's partitions, in process: the real validation workflow over stand-in
partition activities registered under the real names (a plan of several key ranges, a
partition's check, the merge of the report's parts). What is checked is what a user or
an operator would see: never more partitions at once than the window, one failing
partition retried alone from its own checkpoint, a cancel that stops every partition,
a pause that stops them all at their checkpoints and a resume that goes on from there,
and one result summed over the partitions with one report."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.pausing import PauseHandOver
from activities.validating import REPORT, SchemaSnapshot, ValidationWork
from pastools_jobs.contracts import (
    PAUSE_SIGNAL,
    RESUME_SIGNAL,
    JobEvent,
    JobRequest,
    PauseChange,
    Progress,
    queued_attributes,
)
from pastools_jobs.domain import JobStatus
from pastools_jobs.partitions import (
    MergeArtifacts,
    Partition,
    PartitionPlan,
    RecordsPlanRequest,
    key_partitions,
    partition_task_queue,
)
from tests.support.standins import DEADLINE_SECONDS, HEARTBEAT_THROTTLE, UNLIMITED
from workflows.results import PathErrors, SchemaViolation, ValidationResult
from workflows.validation_job import ValidationJob

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

PER_PARTITION = 10
"""Records in each stand-in partition; the first of each is invalid."""


@dataclass
class Partitions:
    """Stand-ins of the partition activities, and what they saw."""

    count: int
    window: int
    held: bool = False
    """Partitions heartbeat until released (or stopped) instead of finishing at once."""
    fail_once: int | None = None
    """This partition's first attempt checkpoints halfway, then fails retryably."""
    plan_stalls: bool = False
    """The plan's first attempt never answers nor heartbeats, as on a worker killed."""
    plan_attempts: int = 0
    running: set[int] = field(default_factory=set)
    most_at_once: int = 0
    attempts: dict[int, list[Any]] = field(default_factory=dict)
    """Per partition, each attempt's checkpoint to resume from (a retry's or a resume's)."""
    stopped: list[int] = field(default_factory=list)
    merged: list[MergeArtifacts] = field(default_factory=list)
    events: list[JobEvent] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    paused: asyncio.Event = field(default_factory=asyncio.Event)

    def all_running(self, count: int) -> bool:
        return len(self.running) == count

    def activities(self) -> list[Any]:
        @activity.defn(name="snapshot_schema")
        async def snapshot(_work: Any) -> SchemaSnapshot:
            return SchemaSnapshot(json_schema={"type": "object"}, sha256="0" * 64)

        @activity.defn(name="plan_record_partitions")
        async def plan(request: RecordsPlanRequest) -> PartitionPlan:
            self.plan_attempts += 1
            if self.plan_stalls and self.plan_attempts == 1:
                await asyncio.Event().wait()
            keys = [f"k{n}" for n in range(1, self.count)]
            parts = key_partitions(keys, self.count * PER_PARTITION)
            return PartitionPlan(partitions=parts, window=self.window)

        @activity.defn(name="validate_records")
        async def check(work: ValidationWork) -> ValidationResult:
            assert work.partition is not None
            index = work.partition.index
            details = activity.info().heartbeat_details
            resumed = details[0] if details else work.resume_from
            self.attempts.setdefault(index, []).append(resumed)
            self.running.add(index)
            self.most_at_once = max(self.most_at_once, len(self.running))
            try:
                await self._work(index, len(self.attempts[index]))
            except asyncio.CancelledError:
                self.stopped.append(index)
                raise
            finally:
                self.running.discard(index)
            return _partition_result(work.partition)

        @activity.defn(name="merge_artifacts")
        async def merge(request: MergeArtifacts) -> int:
            self.merged.append(request)
            return 100

        @activity.defn(name="record_job_event")
        async def record_job_event(event: JobEvent) -> None:
            self.events.append(event)

        @activity.defn(name="record_pause")
        async def record_pause(change: PauseChange) -> None:
            if change.paused_at is not None:
                self.paused.set()

        return [snapshot, plan, check, merge, record_job_event, record_pause, *UNLIMITED]

    async def _work(self, index: int, attempt: int) -> None:
        checkpoint = Progress(done=PER_PARTITION // 2, checkpoint={"after_key": f"p{index}-5"})
        if index == self.fail_once and attempt == 1:
            await _heartbeat_recorded(checkpoint.model_dump(mode="json"))
            raise ApplicationError("the database went away", type="OperationalError")
        if not self.held:
            await asyncio.sleep(0.05)  # long enough for the others of the window to start
            return
        while not self.release.is_set():
            activity.heartbeat(checkpoint.model_dump(mode="json"))  # a cancel comes here
            await asyncio.sleep(0.02)


async def _heartbeat_recorded(checkpoint: Any) -> None:
    """Heartbeat `checkpoint` until Temporal holds it: the retry resumes from it."""
    info = activity.info()
    handle = activity.client().get_workflow_handle(info.workflow_id or "")
    while True:
        activity.heartbeat(checkpoint)
        pending = (await handle.describe()).raw_description.pending_activities
        if any(p.activity_id == info.activity_id and p.heartbeat_details.payloads for p in pending):
            return
        await asyncio.sleep(0.02)


def _partition_result(partition: Partition) -> ValidationResult:
    """One invalid record per partition, the first of its range, failing at /required."""
    key = f"p{partition.index}-0"
    example = SchemaViolation(key=key, at="/", message="'name' is a required property")
    return ValidationResult(
        valid=PER_PARTITION - 1,
        invalid=1,
        errors_by_path=[PathErrors(path="/required", count=1, examples=[example])],
        schema_sha256="0" * 64,
        report=partition.artifact(REPORT),
    )


@asynccontextmanager
async def partition_worker(
    client: Client, task_queue: str, partitions: Partitions
) -> AsyncIterator[None]:
    """The job's worker, and one serving its partitions' queue with room for them all."""
    options: dict[str, Any] = {
        "activities": partitions.activities(),
        "interceptors": [PauseHandOver()],
        "max_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
        "default_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
    }
    queue = partition_task_queue(task_queue)
    async with (
        Worker(client, task_queue=task_queue, workflows=[ValidationJob], **options),
        Worker(client, task_queue=queue, **options),
    ):
        yield


async def start_validation(
    client: Client, task_queue: str
) -> WorkflowHandle[ValidationJob, ValidationResult]:
    request = JobRequest(
        project_id="big",
        params={"examples_per_path": 2},
        row_exists=True,
        attributes_set=True,
    )
    return await client.start_workflow(
        ValidationJob.run,
        request,
        id=f"partitions-{uuid.uuid4().hex}",
        task_queue=task_queue,
        search_attributes=queued_attributes("validation", "big"),
    )


async def until(check: Any) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), DEADLINE_SECONDS)


async def test_partitions_run_within_the_window_and_make_one_result(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    """Five partitions, two at a time; the third fails once after its checkpoint and only
    it is retried, from that checkpoint. The result is the sum, the report one file made
    of the parts in key order."""
    client = workflow_env.client
    partitions = Partitions(count=5, window=2, fail_once=2)
    async with partition_worker(client, task_queue, partitions):
        handle = await start_validation(client, task_queue)
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert partitions.most_at_once == 2
    assert {index: len(seen) for index, seen in partitions.attempts.items()} == {
        0: 1,
        1: 1,
        2: 2,
        3: 1,
        4: 1,
    }
    resumed = partitions.attempts[2][1]
    assert resumed["checkpoint"] == {"after_key": "p2-5"}, "the retry started over"
    assert (result.valid, result.invalid) == (5 * (PER_PARTITION - 1), 5)
    [group] = result.errors_by_path
    assert group.count == 5
    assert [example.key for example in group.examples] == ["p0-0", "p1-0"]
    assert result.report == REPORT
    [merge] = partitions.merged
    assert merge.into == REPORT
    assert merge.parts == [f"validation-report.part-{i:04d}.jsonl" for i in range(5)]
    assert [event.status for event in partitions.events] == [JobStatus.COMPLETED]


async def test_a_plan_on_a_worker_that_died_is_retried_within_the_heartbeat_timeout(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    """The plan activity's worker falls silent (killed while planning): the plan is tried
    again within seconds, not after the plan's whole time limit, and the job completes."""
    client = workflow_env.client
    partitions = Partitions(count=2, window=2, plan_stalls=True)
    async with partition_worker(client, task_queue, partitions):
        handle = await start_validation(client, task_queue)
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert partitions.plan_attempts == 2
    assert result.valid == 2 * (PER_PARTITION - 1)


async def test_a_cancel_stops_every_running_partition(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = workflow_env.client
    partitions = Partitions(count=4, window=3, held=True)
    async with partition_worker(client, task_queue, partitions):
        handle = await start_validation(client, task_queue)
        await until(lambda: partitions.all_running(3))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    assert isinstance(failed.value.cause, CancelledError)
    assert sorted(partitions.stopped) == [0, 1, 2]
    assert 3 not in partitions.attempts, "a partition started after the cancel"
    assert not partitions.merged
    assert [event.status for event in partitions.events] == [JobStatus.CANCELLED]


async def test_a_pause_stops_every_partition_and_a_resume_goes_on_from_their_checkpoints(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = workflow_env.client
    partitions = Partitions(count=3, window=2, held=True)
    async with partition_worker(client, task_queue, partitions):
        handle = await start_validation(client, task_queue)
        await until(lambda: partitions.all_running(2))
        await handle.signal(PAUSE_SIGNAL)
        await asyncio.wait_for(partitions.paused.wait(), DEADLINE_SECONDS)
        assert sorted(partitions.stopped) == [0, 1]
        assert not (await handle.describe()).raw_description.pending_activities
        partitions.release.set()
        await handle.signal(RESUME_SIGNAL)
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)

    for index in (0, 1):
        first, resumed = partitions.attempts[index]
        assert first is None
        assert resumed is not None and resumed.checkpoint == {"after_key": f"p{index}-5"}
    assert len(partitions.attempts[2]) == 1, "the partition not begun ran once, after resume"
    assert result.valid == 3 * (PER_PARTITION - 1)
