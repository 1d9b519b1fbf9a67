"""import: a CSV, JSON Lines or Parquet file into the project's records (upserted by key)."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.importing import ImportActivities, ImportWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.datasets.readers import CsvOptions
    from pastools_jobs.job_catalog import IMPORT
    from workflows.lifecycle import JobWorkflow
    from workflows.params import ImportParams


@workflow.defn(name=IMPORT.workflow_name)
class ImportJob(JobWorkflow):
    job_type = IMPORT.name
    params_model = IMPORT.params_model
    activity_groups = (ImportActivities,)
    description = IMPORT.description

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)

    async def execute(self, params: ImportParams) -> dict[str, Any]:
        assert self._request is not None
        work = ImportWork(
            project_id=self._request.project_id,
            source=params.source,
            format=params.format,
            key_column=params.key_column,
            csv=CsvOptions(params.delimiter, params.quotechar, params.encoding),
            on_error=params.on_error,
            max_examples=params.max_examples,
            batch_rows=params.batch_rows,
        )
        return await self.run_work(ImportActivities.import_records, work)
