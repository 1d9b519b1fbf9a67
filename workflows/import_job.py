"""import: read a source file from the import directory, line by line."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.items import ItemActivities, ItemsWork
    from pastools_jobs.contracts import JobRequest
    from workflows.lifecycle import JobWorkflow
    from workflows.params import ImportParams


@workflow.defn(name="ImportJob")
class ImportJob(JobWorkflow):
    job_type = "import"
    params_model = ImportParams
    activity_groups = (ItemActivities,)
    description = "Import a file from the import directory into the project."

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)

    async def execute(self, params: ImportParams) -> dict[str, Any]:
        lines = await workflow.execute_activity_method(
            ItemActivities.count_source_lines,
            params.source,
            **self.run_activity_options(),
        )
        outcome = await workflow.execute_activity_method(
            ItemActivities.process_items,
            ItemsWork(items=lines, item_seconds=params.item_ms / 1000, verb="Imported"),
            **self.run_activity_options(),
        )
        return {"source": params.source, "rows": lines, "resumed_from": outcome.resumed_from}
