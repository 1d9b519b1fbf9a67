"""import: a CSV, JSON Lines or Parquet file into the project's records (upserted by key,
inserted only where new, or replacing them all)."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.importing import ImportActivities, ImportWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.datasets.readers import CsvOptions, Shaping
    from pastools_jobs.job_catalog import IMPORT
    from workflows.lifecycle import JobContext, JobWorkflow
    from workflows.params import ImportParams
    from workflows.results import ImportResult


@workflow.defn(name=IMPORT.workflow_name)
class ImportJob(JobWorkflow[ImportParams, ImportResult]):
    spec = IMPORT
    activity_groups = (ImportActivities,)

    @workflow.run
    async def run(self, request: JobRequest) -> ImportResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: ImportParams) -> ImportResult:
        work = ImportWork(
            project_id=job.project_id,
            source=params.source,
            format=params.format,
            key_column=params.key_column,
            csv=CsvOptions(params.delimiter, params.quotechar, params.encoding),
            on_error=params.on_error,
            max_examples=params.max_examples,
            batch_rows=params.batch_rows,
            shaping=Shaping(
                tuple(params.null_values),
                params.column_types or {},
                params.infer_types,
                params.infer_rows,
            ),
            project_types=True,
            mode=params.mode,
            max_rejected=params.max_rejected,
        )
        return await self.run_work(ImportActivities.import_records, work)
