"""The greet job's workflow: the shared lifecycle around its one activity."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pastools_jobs.contracts import JobRequest
    from tests.support.tiny_job.activity import GreetActivities
    from tests.support.tiny_job.spec import GREET, Greeting, GreetParams
    from workflows.lifecycle import JobContext, JobWorkflow


@workflow.defn(name=GREET.workflow_name)
class GreetJob(JobWorkflow[GreetParams, Greeting]):
    spec = GREET
    activity_groups = (GreetActivities,)

    @workflow.run
    async def run(self, request: JobRequest) -> Greeting:
        return await self.run_job(request)

    async def execute(self, job: JobContext, params: GreetParams) -> Greeting:
        return await self.run_work(GreetActivities.greet, params)
