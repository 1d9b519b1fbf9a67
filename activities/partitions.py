"""Planning a big job into partitions, and merging their parts into one artifact.

The workflow may not read the database, so an activity decides the partitions: a job
over at most `partition_rows` records is not split (one activity, as always); a bigger one
is cut into key ranges of nearly equal size. Each partition writes its part of an
artifact (`Partition.artifact`); once all are done, `merge_artifacts` concatenates the
parts in partition order, which is key order, into the one file a single activity would
have written, and removes them.
"""

import math
import threading

from temporalio import activity

from activities.context import ActivityGroup
from activities.job import current_job_run
from activities.progress import heartbeating, worker_stopping
from pastools_jobs.datasets.records import count_records, split_keys
from pastools_jobs.partitions import (
    MergeArtifacts,
    PartitionPlan,
    RecordsPlanRequest,
    key_partitions,
)
from pastools_jobs.storage.base import Storage, find_artifact


class PartitionActivities(ActivityGroup):
    @activity.defn(name="plan_record_partitions")
    async def plan_record_partitions(self, request: RecordsPlanRequest) -> PartitionPlan:
        return await heartbeating(
            lambda _stop: self._plan(request), self.context.settings.heartbeat_interval_seconds
        )

    @activity.defn(name="merge_artifacts")
    async def merge_artifacts(self, merge: MergeArtifacts) -> int:
        """The merged artifact's size. Idempotent: a retry after the parts were merged and
        removed finds the artifact finished and leaves it."""
        job_id = current_job_run().job_id
        return await heartbeating(
            lambda stop: self._merge(job_id, merge, stop),
            self.context.settings.heartbeat_interval_seconds,
        )

    def _plan(self, request: RecordsPlanRequest) -> PartitionPlan:
        settings = self.context.settings
        with self.context.db.transaction() as session:
            total = count_records(session, request.project_id, request.key_prefix)
            if total <= settings.partition_rows:
                return PartitionPlan()
            parts = math.ceil(total / settings.partition_rows)
            keys = split_keys(session, request.project_id, parts, total, request.key_prefix)
        partitions = key_partitions(keys, total)
        return PartitionPlan(partitions=partitions, window=settings.partition_window)

    def _merge(self, job_id: str, merge: MergeArtifacts, stop: threading.Event) -> int:
        storage = self.context.storage
        done = merged_before(storage, job_id, merge.parts, merge.into)
        if done is not None:
            return done
        writer = storage.artifact_writer(
            job_id,
            merge.into,
            None,
            checkpoint_interval=self.context.settings.heartbeat_interval_seconds,
        )
        left = merge.max_lines
        try:
            for part in merge.parts:
                _, chunks = storage.read_artifact(job_id, part)
                for chunk in chunks:
                    if stop.is_set():
                        raise worker_stopping()
                    if left is not None:
                        chunk, left = _first_lines(chunk, left)
                    writer.stream.write(chunk)
            size = writer.finish()
        finally:
            writer.close()
        for part in merge.parts:
            storage.delete_artifact(job_id, part)
        return size


def merged_before(storage: Storage, job_id: str, parts: list[str], into: str) -> int | None:
    """The size of `into` if an earlier attempt merged the parts into it, once the parts
    it had not yet removed when it stopped are removed; None if every part is there to be
    merged (again: an attempt that stopped before removing any rewrites the same file)."""
    present = {listed.name for listed in storage.list_artifacts(job_id)}
    if all(part in present for part in parts):
        return None
    done = find_artifact(storage, job_id, into)
    if done is None:
        missing = [part for part in parts if part not in present]
        raise RuntimeError(f"the parts {missing} of {into} are missing")
    for part in parts:
        if part in present:
            storage.delete_artifact(job_id, part)
    return done.bytes


def _first_lines(chunk: bytes, left: int) -> tuple[bytes, int]:
    """The chunk up to its `left`-th line, and how many lines may follow it."""
    end = 0
    while left > 0 and (newline := chunk.find(b"\n", end)) != -1:
        end, left = newline + 1, left - 1
    return (chunk if left > 0 else chunk[:end]), left
