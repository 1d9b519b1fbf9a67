"""A big export's partitions, in process: the real export workflow over stand-in
activities registered under the real names. What is checked is what makes the parts one
file: the columns decided once and given to every part, the header in the first part
alone, key ranges that follow one another, the parts merged in order into the export's
name, and one result; a Parquet export stays one activity, unplanned."""

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.exporting import ExportWork
from pastools_jobs.contracts import JobEvent, JobRequest, queued_attributes
from pastools_jobs.partitions import (
    MergeArtifacts,
    PartitionPlan,
    RecordsPlanRequest,
    key_partitions,
    partition_task_queue,
)
from tests.support.standins import DEADLINE_SECONDS, UNLIMITED
from workflows.export_job import ExportJob
from workflows.results import ExportResult

pytestmark = [pytest.mark.inprocess, pytest.mark.anyio]

COLUMNS = ["age", "name", "zz_late"]
MERGED_BYTES = 999


@dataclass
class ExportParts:
    """Stand-ins of the export's activities, and what they were given."""

    planned: list[RecordsPlanRequest] = field(default_factory=list)
    works: list[ExportWork] = field(default_factory=list)
    merged: list[MergeArtifacts] = field(default_factory=list)

    def activities(self) -> list[Any]:
        @activity.defn(name="plan_record_partitions")
        async def plan(request: RecordsPlanRequest) -> PartitionPlan:
            self.planned.append(request)
            return PartitionPlan(partitions=key_partitions(["k1", "k2"], 30), window=3)

        @activity.defn(name="export_columns")
        async def columns(work: ExportWork) -> list[str] | None:
            assert work.partition is None and work.after_key is None
            return COLUMNS

        @activity.defn(name="export_records")
        async def export(work: ExportWork) -> ExportResult:
            self.works.append(work)
            name = work.artifact or f"export.{work.format}"
            compression = work.compression or "zstd"
            return ExportResult(
                artifact=name, format=work.format, compression=compression, rows=10, bytes=5
            )

        @activity.defn(name="merge_artifacts")
        async def merge(request: MergeArtifacts) -> int:
            self.merged.append(request)
            return MERGED_BYTES

        @activity.defn(name="record_job_event")
        async def record_job_event(_event: JobEvent) -> None:
            return None

        return [plan, columns, export, merge, record_job_event, *UNLIMITED]


async def exported(env: WorkflowEnvironment, task_queue: str, **params: Any) -> Any:
    parts = ExportParts()
    options: dict[str, Any] = {"activities": parts.activities()}
    request = JobRequest(project_id="big", params=params, row_exists=True, attributes_set=True)
    async with (
        Worker(env.client, task_queue=task_queue, workflows=[ExportJob], **options),
        Worker(env.client, task_queue=partition_task_queue(task_queue), **options),
    ):
        handle = await env.client.start_workflow(
            ExportJob.run,
            request,
            id=f"export-parts-{uuid.uuid4().hex}",
            task_queue=task_queue,
            search_attributes=queued_attributes("export", "big"),
        )
        result = await asyncio.wait_for(handle.result(), DEADLINE_SECONDS)
    return parts, result


async def test_the_parts_share_the_columns_and_merge_into_one_file(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    parts, result = await exported(
        workflow_env, task_queue, format="csv", compression="gzip", key_prefix="k"
    )

    assert [request.key_prefix for request in parts.planned] == ["k"]
    works = sorted(parts.works, key=lambda work: work.partition.index if work.partition else -1)
    assert [work.columns for work in works] == [COLUMNS] * 3, "every part the same columns"
    assert [work.header for work in works] == [True, False, False], "one header, first"
    assert [(work.after_key, work.until_key) for work in works] == [
        (None, "k1"),
        ("k1", "k2"),
        ("k2", None),
    ], "ranges that follow one another, from the start to the end"
    names = [f"export.csv.part-{index:04d}.gz" for index in range(3)]
    assert [work.artifact for work in works] == names
    assert parts.merged == [MergeArtifacts(parts=names, into="export.csv.gz")]
    assert ExportResult.model_validate(result) == ExportResult(
        artifact="export.csv.gz", format="csv", compression="gzip", rows=30, bytes=MERGED_BYTES
    )


async def test_a_parquet_export_stays_one_activity(
    workflow_env: WorkflowEnvironment, task_queue: str
) -> None:
    parts, result = await exported(workflow_env, task_queue, format="parquet")

    assert not parts.planned and not parts.merged
    [work] = parts.works
    assert work.partition is None and work.header and work.columns is None
    assert ExportResult.model_validate(result).artifact == "export.parquet"
