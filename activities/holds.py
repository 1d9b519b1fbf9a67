"""The local activity by which a job that no submission started (a schedule's run) learns
whether its project or type is held, and so starts paused as a submitted one would."""

from pydantic import BaseModel
from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.holds import is_held


class HoldQuestion(BaseModel):
    project_id: str
    job_type: str


class HoldActivities(ActivityGroup):
    @activity.defn(name="is_held")
    async def is_held(self, question: HoldQuestion) -> bool:
        return await self.context.db.run(
            lambda session: is_held(session, question.project_id, question.job_type)
        )
