"""The test_run job: Run the project's test suite."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pastools_jobs.contracts import JobRequest
    from workflows.probe_job import ProbeJob


@workflow.defn(name="TestRunJob")
class TestRunJob(ProbeJob):
    job_type = "test_run"
    description = "Run the project's test suite."

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)
