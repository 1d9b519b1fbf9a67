"""The export job: Export the project's dataset."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pastools_jobs.contracts import JobRequest
    from workflows.probe_job import ProbeJob


@workflow.defn(name="ExportJob")
class ExportJob(ProbeJob):
    job_type = "export"
    description = "Export the project's dataset."

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)
