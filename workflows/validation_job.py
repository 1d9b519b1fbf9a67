"""validation: Validate the project's records against its JSON Schema."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.validating import ValidationActivities, ValidationWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.job_catalog import VALIDATION
    from workflows.lifecycle import JobContext, JobWorkflow
    from workflows.params import ValidationParams
    from workflows.results import ValidationResult


@workflow.defn(name=VALIDATION.workflow_name)
class ValidationJob(JobWorkflow[ValidationParams, ValidationResult]):
    spec = VALIDATION
    activity_groups = (ValidationActivities,)

    @workflow.run
    async def run(self, request: JobRequest) -> ValidationResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: ValidationParams) -> ValidationResult:
        work = ValidationWork(project_id=job.project_id, **params.model_dump())
        work.snapshot = await self.snapshot(ValidationActivities.snapshot_schema, work)
        return await self.run_work(ValidationActivities.validate_records, work)
