"""export: a project's records to a CSV, JSON Lines or Parquet artifact, CSV and JSON
Lines optionally compressed."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.exporting import ExportActivities, ExportWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import EXPORT
    from workflows.lifecycle import JobContext, JobWorkflow
    from workflows.params import ExportParams
    from workflows.results import ExportResult


@workflow.defn(name=EXPORT.workflow_name)
class ExportJob(JobWorkflow[ExportParams, ExportResult]):
    spec = EXPORT
    activity_groups = (ExportActivities,)

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
        return await self.run_work(ExportActivities.export_records, work)
