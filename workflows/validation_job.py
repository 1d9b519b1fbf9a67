"""The validation job: Validate the project's records against its schema."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pastools_jobs.contracts import JobRequest
    from workflows.probe_job import ProbeJob


@workflow.defn(name="ValidationJob")
class ValidationJob(ProbeJob):
    job_type = "validation"
    description = "Validate the project's records against its schema."

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)
