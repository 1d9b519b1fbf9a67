"""The probe job: processes a number of items at a set pace, reporting progress.

It does no work on data; it exercises the whole lifecycle (progress, cancel, retry,
resume after a crash) for smoke tests, drills and benchmarks of the platform itself.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.items import ItemActivities, ItemsWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import PROBE
    from workflows.lifecycle import JobContext, JobWorkflow
    from workflows.params import ItemsParams
    from workflows.results import ProbeResult


@workflow.defn(name=PROBE.workflow_name)
class ProbeJob(JobWorkflow[ItemsParams, ProbeResult]):
    spec = PROBE
    activity_groups = (ItemActivities,)

    @workflow.run
    async def run(self, request: JobRequest) -> ProbeResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: ItemsParams) -> ProbeResult:
        return await self.run_work(
            ItemActivities.process_items,
            ItemsWork(
                items=params.items,
                item_seconds=params.item_ms / 1000,
                verb="Processed",
                log_every=params.log_every,
            ),
        )
