"""validation: Validate the project's records against its JSON Schema."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.validating import ValidationActivities, ValidationWork
    from pastools_jobs.contracts import JobRequest
    from workflows.lifecycle import JobWorkflow
    from workflows.params import ValidationParams


@workflow.defn(name="ValidationJob")
class ValidationJob(JobWorkflow):
    job_type = "validation"
    params_model = ValidationParams
    activity_groups = (ValidationActivities,)
    description = "Validate the project's records against its JSON Schema."

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)

    async def execute(self, params: ValidationParams) -> dict[str, Any]:
        assert self._request is not None
        work = ValidationWork(project_id=self._request.project_id, **params.model_dump())
        work.snapshot = await self.snapshot(ValidationActivities.snapshot_schema, work)
        return await self.run_work(ValidationActivities.validate_records, work)
