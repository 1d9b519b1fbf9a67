"""test_run: Run the project's data tests, one after another."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.testing import TestRunActivities, TestRunWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import TEST_RUN
    from workflows.lifecycle import JobWorkflow
    from workflows.params import TestRunParams


@workflow.defn(name=TEST_RUN.workflow_name)
class TestRunJob(JobWorkflow):
    job_type = TEST_RUN.name
    params_model = TEST_RUN.params_model
    activity_groups = (TestRunActivities,)
    description = TEST_RUN.description

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)

    async def execute(self, params: TestRunParams) -> dict[str, Any]:
        request = self._request
        assert request is not None
        work = TestRunWork(
            project_id=request.project_id, scope=request.scope, **params.model_dump()
        )
        work.snapshot = await self.snapshot(TestRunActivities.snapshot_test_suite, work)
        return await self.run_work(TestRunActivities.run_data_tests, work)
