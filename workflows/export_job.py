"""export: a project's records to a CSV, JSON Lines or Parquet artifact, CSV and JSON
Lines optionally compressed.

A CSV or JSON Lines export of more records than a partition holds (`partition_rows`) is
split into key ranges written in parallel (`workflows/partitioned.py`): the columns are
decided once (`export_columns`) and given to every part, only the first part writes the
CSV header, and the parts, concatenated in key order, are the one file a single activity
writes. Uncompressed, byte for byte; compressed, each part is its own series of gzip
members or zstd frames, so the file is valid and decompresses to the same bytes, though
its members are cut elsewhere. Parquet stays one activity: a file cannot be concatenated.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.exporting import ExportActivities, ExportWork, artifact_name, compression_of
    from activities.partitions import PartitionActivities
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import EXPORT
    from pastools_jobs.partitions import Partition, PartitionPlan
    from workflows.lifecycle import JobContext
    from workflows.params import ExportParams
    from workflows.partitioned import PartitionedJobWorkflow
    from workflows.results import ExportResult
    from workflows.work_options import plan_activity_options


@workflow.defn(name=EXPORT.workflow_name)
class ExportJob(PartitionedJobWorkflow[ExportParams, ExportResult]):
    spec = EXPORT
    activity_groups = (ExportActivities, PartitionActivities)

    @workflow.run
    async def run(self, request: JobRequest) -> ExportResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: ExportParams) -> ExportResult:
        work = ExportWork(
            project_id=job.project_id,
            format=params.format,
            key_prefix=params.key_prefix,
            batch_rows=params.batch_rows,
            columns=params.columns,
            compression=params.compression,
            row_group_rows=params.row_group_rows,
        )
        if work.format != "parquet":
            plan = await self.plan_records(job.project_id, params.key_prefix)
            if plan.split:
                return await self._export_split(work, plan)
        return await self.run_work(ExportActivities.export_records, work)

    async def _export_split(self, work: ExportWork, plan: PartitionPlan) -> ExportResult:
        """The parts written in parallel with the same columns, then concatenated."""
        columns = await workflow.execute_activity_method(
            ExportActivities.export_columns,
            work,
            **plan_activity_options(),
        )
        name = artifact_name(work.format, compression_of(work))
        works = [export_part(work, part, columns, name) for part in plan.partitions]
        parts = await self.run_partitions(ExportActivities.export_records, works, plan.window)
        size = await self.merge_artifacts([part.artifact for part in parts], name)
        return merge_results(parts, name, size)


def export_part(
    work: ExportWork, partition: Partition, columns: list[str] | None, name: str
) -> ExportWork:
    """The work of one part: its key range into its own artifact, with the export's
    columns; the first part alone starts with the CSV header."""
    return work.model_copy(
        update={
            "columns": columns,
            "after_key": partition.keys.after_key,
            "until_key": partition.keys.until_key,
            "header": partition.index == 0,
            "artifact": partition.artifact(name),
            "partition": partition,
        }
    )


def merge_results(parts: list[ExportResult], name: str, size: int) -> ExportResult:
    """The split export's result, as one activity would have returned it."""
    return parts[0].model_copy(
        update={"artifact": name, "rows": sum(part.rows for part in parts), "bytes": size}
    )
