"""validation: Validate the project's records against its JSON Schema."""

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.validating import ValidationActivities, ValidationWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import VALIDATION
    from workflows.lifecycle import JobWorkflow
    from workflows.params import ValidationParams


@workflow.defn(name=VALIDATION.workflow_name)
class ValidationJob(JobWorkflow):
    job_type = VALIDATION.name
    params_model = VALIDATION.params_model
    activity_groups = (ValidationActivities,)
    description = VALIDATION.description

    @workflow.run
    async def run(self, request: JobRequest) -> dict[str, Any]:
        return await self.run_job(request)

    async def execute(self, params: ValidationParams) -> dict[str, Any]:
        assert self._request is not None
        work = ValidationWork(project_id=self._request.project_id, **params.model_dump())
        work.snapshot = await self.snapshot(ValidationActivities.snapshot_schema, work)
        return await self.run_work(ValidationActivities.validate_records, work)
