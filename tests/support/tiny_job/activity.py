"""The greet job's work: one step, reported like any job's."""

from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.contracts import Progress
from tests.support.tiny_job.spec import Greeting, GreetParams


class GreetActivities(ActivityGroup):
    @activity.defn(name="greet")
    async def greet(self, params: GreetParams) -> Greeting:
        progress = Progress(done=1, total=1, message=f"Greeted {params.name}")
        await self.reporter().report(progress, force=True)
        return Greeting(greeting=f"Hello, {params.name}!")
