"""test_run: Run the project's data tests, one after another."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.testing import TestRunActivities, TestRunWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import TEST_RUN
    from workflows.lifecycle import JobContext, JobWorkflow
    from workflows.params import TestRunParams
    from workflows.results import TestRunResult


@workflow.defn(name=TEST_RUN.workflow_name)
class TestRunJob(JobWorkflow[TestRunParams, TestRunResult]):
    spec = TEST_RUN
    activity_groups = (TestRunActivities,)

    @workflow.run
    async def run(self, request: JobRequest) -> TestRunResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: TestRunParams) -> TestRunResult:
        work = TestRunWork(project_id=job.project_id, scope=job.scope, **params.model_dump())
        work.snapshot = await self.snapshot(TestRunActivities.snapshot_test_suite, work)
        return await self.run_work(TestRunActivities.run_data_tests, work)
