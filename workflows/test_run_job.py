"""test_run: Run the project's data tests, one after another."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.testing import TestRunActivities, TestRunWork
    from pastools_jobs.contracts import JobRequest
    from workflows.lifecycle import JobWorkflow
    from workflows.params import TestRunParams


@workflow.defn(name="TestRunJob")
class TestRunJob(JobWorkflow):
    job_type = "test_run"
    params_model = TestRunParams
    activity_groups = (TestRunActivities,)
    description = "Run the project's data tests, one after another."

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
