"""Big jobs across workers: one job's work split into partitions run as parallel activities.

A job type whose input can be large plans its partitions with an activity (the workflow
reads no database): `PartitionPlan` has none for a small input, which runs as one
activity exactly as before (`run_work`), or several `Partition`s and a window. Then
`run_partitions` runs one ordinary work activity per partition, any worker taking any of
them, at most `window` at once, each worker as many as its partition slots allow
(`partition_task_queue`: a worker that is free takes the next one):

- each partition heartbeats its own checkpoint and is retried alone, by its own retry
  policy, from that checkpoint; a partition that fails for good stops the others and
  fails the job;
- progress: each partition reports how far it got, and the row shows the sum over the
  partitions (`mirror.apply.apply_partition_progress`): one progress bar, truthful when a
  retried partition goes back to its checkpoint;
- cancel: every running partition is told to stop and waited for (each stops at its next
  heartbeat);
- pause: every running partition stops at its checkpoint and no new one starts; on
  resume the unfinished ones go on, each from the checkpoint it stopped at
  (`Work.resume_from`); the finished ones stay finished (a pause that comes while the
  plan or the merge runs, seconds either, takes effect after the plan, or not at all);
- the results come back in partition order for the job type to merge into its one result
  (validation: `activities.validating.merge_results` and `PartitionActivities.merge_artifacts`
  for the report's parts).

To plug in another job type: give its `Work` model a `partition: Partition | None` field,
make its activity read only its partition (a key range through `record_batches(after_key=,
until_key=)`; a file job a byte range or row groups, with its own planning activity) and
write its artifact under `partition.artifact(name)`, report progress through
`self.reporter(partition)`, and derive its workflow from `PartitionedJobWorkflow`:
plan, then `run_work` for no partitions or `run_partitions` and a merge.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from activities.partitions import PartitionActivities
    from pastools_jobs.contracts import Progress, Work
    from pastools_jobs.job_spec import P, R
    from pastools_jobs.partitions import (
        MergeArtifacts,
        PartitionPlan,
        RecordsPlanRequest,
        partition_task_queue,
    )
    from workflows.lifecycle import _NOT_PAUSED, JobWorkflow
    from workflows.shielding import uncancel, uncancellable
    from workflows.work_options import plan_activity_options, work_activity_options

T = TypeVar("T")
WorkT = TypeVar("WorkT", bound=BaseModel)

PARTITIONS_PATCH = "partitioned-work"
"""Runs begun before it planned nothing and ran one activity; they replay so."""


class PartitionedJobWorkflow(JobWorkflow[P, R]):
    """A job workflow whose work may be split into partitions run in parallel."""

    def __init__(self) -> None:
        super().__init__()
        self._partitions: dict[int, asyncio.Task[Any]] = {}
        """The partition activities running, by partition index."""

    def _in_flight(self) -> list["asyncio.Task[Any]"]:
        return [*super()._in_flight(), *self._partitions.values()]

    async def plan_records(self, project_id: str, key_prefix: str | None = None) -> PartitionPlan:
        """The partitions of a job over the project's records; none for a small one, and
        none for runs begun before partitions existed."""
        if not workflow.patched(PARTITIONS_PATCH):
            return PartitionPlan()
        return await workflow.execute_activity_method(
            PartitionActivities.plan_record_partitions,
            RecordsPlanRequest(project_id=project_id, key_prefix=key_prefix),
            **plan_activity_options(),
        )

    async def merge_artifacts(
        self, parts: list[str], into: str, max_lines: int | None = None
    ) -> int:
        """Concatenate the partitions' parts of an artifact, in order, into one (its first
        `max_lines` lines)."""
        return await workflow.execute_activity_method(
            PartitionActivities.merge_artifacts,
            MergeArtifacts(parts=parts, into=into, max_lines=max_lines),
            **work_activity_options(),
        )

    async def run_partitions(
        self,
        activity: Callable[[Any, WorkT], Awaitable[T]],
        works: Sequence[WorkT],
        window: int,
    ) -> list[T]:
        """Run one activity per partition's work, at most `window` at once, in one of the
        project's running slots; their results in partition order."""
        todo: dict[int, WorkT] = dict(enumerate(works))
        results: dict[int, T] = {}
        while todo:
            if self._pause_wanted:
                await self._wait_paused()
            async with self.running_slot(self._project_id) as granted:
                if not granted or self._pause_wanted:
                    continue  # paused while it waited for a slot: the slot goes back
                try:
                    await self._fan_out(activity, todo, results, max(window, 1))
                finally:
                    self._stopping_for_pause = False
        return [results[index] for index in range(len(works))]

    async def _fan_out(
        self,
        activity: Callable[[Any, WorkT], Awaitable[T]],
        todo: dict[int, WorkT],
        results: dict[int, T],
        window: int,
    ) -> None:
        """Start partitions in order as the window allows until none is left or a pause
        stops them all; a failed partition stops the others and fails the job."""
        waiting = sorted(todo)
        queue = partition_task_queue(workflow.info().task_queue)
        try:
            while True:
                while waiting and len(self._partitions) < window and not self._stopping():
                    index = waiting.pop(0)
                    self._partitions[index] = workflow.start_activity_method(
                        activity, todo[index], task_queue=queue, **work_activity_options()
                    )
                if not self._partitions:
                    return  # all done, or all stopped for a pause
                await workflow.wait_condition(self._any_partition_ended)
                self._settle(todo, results)
        except asyncio.CancelledError:
            await self._stop_partitions(todo, results, cancelled=True)
            if todo:
                raise
            # Every partition's outcome came with the cancel: the outcome wins.
        except BaseException:
            await self._stop_partitions(todo, results, cancelled=False)
            raise

    def _stopping(self) -> bool:
        return self._pause_wanted or self._stopping_for_pause or self._cancelled

    def _any_partition_ended(self) -> bool:
        return any(task.done() for task in self._partitions.values())

    def _settle(self, todo: dict[int, WorkT], results: dict[int, T]) -> None:
        """Take the outcome of each partition that ended: its result, or the checkpoint a
        pause stopped it at (it goes on from there), or its failure, raised."""
        for index, task in list(self._partitions.items()):
            if not task.done():
                continue
            del self._partitions[index]
            error = asyncio.CancelledError() if task.cancelled() else task.exception()
            if error is None:
                results[index] = task.result()
                del todo[index]
                continue
            stopped_at = self._paused_at(task, error)
            if stopped_at is _NOT_PAUSED:
                raise error
            work = todo[index]
            if isinstance(stopped_at, Progress) and isinstance(work, Work):
                todo[index] = work.model_copy(update={"resume_from": stopped_at})

    async def _stop_partitions(
        self, todo: dict[int, WorkT], results: dict[int, T], *, cancelled: bool
    ) -> None:
        """Tell every running partition to stop and wait until each has (a cancel of the job
        meanwhile changes nothing): results that came anyway still count."""
        if cancelled:
            self._cancelled = True
            uncancel()
        for task in self._partitions.values():
            task.cancel()
        await uncancellable(
            workflow.wait_condition(lambda: all(task.done() for task in self._partitions.values()))
        )
        for index, task in list(self._partitions.items()):
            del self._partitions[index]
            if not task.cancelled() and task.exception() is None:
                results[index] = task.result()
                del todo[index]
