"""validation: Validate the project's records against its JSON Schema."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.partitions import PartitionActivities
    from activities.validating import REPORT, ValidationActivities, ValidationWork, merge_results
    from pastools_jobs.contracts import JobRequest
    from pastools_jobs.datasets.thresholds import validation_verdict
    from pastools_jobs.job_catalog import VALIDATION
    from workflows.lifecycle import JobContext
    from workflows.params import ValidationParams
    from workflows.partitioned import PartitionedJobWorkflow
    from workflows.results import ValidationResult


@workflow.defn(name=VALIDATION.workflow_name)
class ValidationJob(PartitionedJobWorkflow[ValidationParams, ValidationResult]):
    spec = VALIDATION
    activity_groups = (ValidationActivities, PartitionActivities)

    @workflow.run
    async def run(self, request: JobRequest) -> ValidationResult:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: ValidationParams) -> ValidationResult:
        """Over more records than a partition holds, key ranges checked in parallel, their
        results and report parts merged into what one activity would have made; then the
        counts judged by `max_invalid`."""
        given = params.model_dump(exclude={"max_invalid"})  # judged here, from the counts
        work = ValidationWork(project_id=job.project_id, **given)
        work.snapshot = await self.snapshot(ValidationActivities.snapshot_schema, work)
        plan = await self.plan_records(job.project_id)
        if plan.split:
            works = [work.model_copy(update={"partition": part}) for part in plan.partitions]
            parts = await self.run_partitions(
                ValidationActivities.validate_records, works, plan.window
            )
            await self.merge_artifacts([part.report for part in parts], REPORT)
            result = merge_results(parts, params.examples_per_path)
        else:
            result = await self.run_work(ValidationActivities.validate_records, work)
        verdict = validation_verdict(
            params.max_invalid, result.invalid, result.valid + result.invalid
        )
        return result.model_copy(update={"verdict": verdict, "max_invalid": params.max_invalid})
