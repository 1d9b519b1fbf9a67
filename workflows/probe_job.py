"""The probe job: processes a number of items at a set pace, reporting progress.

It does no work on data; it exercises the whole lifecycle (progress, cancel, retry,
resume after a crash) for smoke tests, drills and benchmarks of the platform itself.
"""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.items import ItemActivities, ItemsWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import PROBE
    from workflows.lifecycle import JobWorkflow
    from workflows.params import ItemsParams


@workflow.defn(name=PROBE.workflow_name)
class ProbeJob(JobWorkflow):
    job_type = PROBE.name
    params_model = PROBE.params_model
    activity_groups = (ItemActivities,)
    description = PROBE.description

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)

    async def execute(self, params: ItemsParams) -> dict[str, Any]:
        outcome = await self.run_work(
            ItemActivities.process_items,
            ItemsWork(items=params.items, item_seconds=params.item_ms / 1000, verb="Processed"),
        )
        return {"items": outcome.items, "resumed_from": outcome.resumed_from}
