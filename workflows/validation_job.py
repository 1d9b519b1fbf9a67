"""validation: Validate the project's records against its JSON Schema."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.validating import ValidationActivities, ValidationWork
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.datasets.thresholds import validation_verdict
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
        given = params.model_dump(exclude={"max_invalid"})  # judged here, from the counts
        work = ValidationWork(project_id=job.project_id, **given)
        work.snapshot = await self.snapshot(ValidationActivities.snapshot_schema, work)
        result = await self.run_work(ValidationActivities.validate_records, work)
        verdict = validation_verdict(
            params.max_invalid, result.invalid, result.valid + result.invalid
        )
        return result.model_copy(update={"verdict": verdict, "max_invalid": params.max_invalid})
