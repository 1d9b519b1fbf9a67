"""bulk: cancel, retry or delete every job a filter matches, as a job of its own."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.bulk import BulkActivities, BulkWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import BULK
    from workflows.lifecycle import JobContext, JobWorkflow
    from workflows.params import BulkParams
    from workflows.results import BulkResult


@workflow.defn(name=BULK.workflow_name)
class BulkActionJob(JobWorkflow[BulkParams, BulkResult]):
    spec = BULK
    activity_groups = (BulkActivities,)

    @workflow.run
    async def run(self, request: JobRequest) -> BulkResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: BulkParams) -> BulkResult:
        work = BulkWork(params=params, scope=job.scope)
        return await self.run_work(BulkActivities.apply_bulk_action, work)
