"""export: a project's records to a CSV, JSON Lines or Parquet artifact."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.exporting import ExportActivities, ExportWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import EXPORT
    from workflows.lifecycle import JobWorkflow
    from workflows.params import ExportParams


@workflow.defn(name=EXPORT.workflow_name)
class ExportJob(JobWorkflow):
    job_type = EXPORT.name
    params_model = EXPORT.params_model
    activity_groups = (ExportActivities,)
    description = EXPORT.description

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)

    async def execute(self, params: ExportParams) -> dict[str, Any]:
        assert self._request is not None
        work = ExportWork(
            project_id=self._request.project_id,
            format=params.format,
            key_prefix=params.key_prefix,
            batch_rows=params.batch_rows,
        )
        return await self.run_work(ExportActivities.export_records, work)
