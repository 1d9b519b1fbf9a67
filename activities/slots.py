"""The local activities by which a job run claims and gives back its project's running
slot (`pastools_jobs.running_slots`), under the limit the worker's settings give."""

from pydantic import BaseModel
from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.clock import utcnow
from pastools_jobs.running_slots import SlotHolder, claim_slot, release_slot


class SlotRequest(BaseModel):
    job_id: str
    run_id: str
    project_id: str

    @property
    def holder(self) -> SlotHolder:
        return SlotHolder(self.job_id, self.run_id, self.project_id)


class SlotAnswer(BaseModel):
    granted: bool
    recorded: bool
    """A row stands for the run (it holds a slot or waits): it must be released."""


class RunToWake(BaseModel):
    job_id: str
    run_id: str


class SlotActivities(ActivityGroup):
    @activity.defn(name="claim_running_slot")
    async def claim_running_slot(self, request: SlotRequest) -> SlotAnswer:
        """No limit for the project: granted at once, without touching the database."""
        limit = self.context.settings.running_limit(request.project_id)
        if limit is None:
            return SlotAnswer(granted=True, recorded=False)
        now = utcnow()
        granted = await self.context.db.run(
            lambda session: claim_slot(session, request.holder, limit, now)
        )
        return SlotAnswer(granted=granted, recorded=True)

    @activity.defn(name="release_running_slot")
    async def release_running_slot(self, request: SlotRequest) -> list[RunToWake]:
        """The waiting runs that may take the freed slots (none when no limit applies now:
        they then find out at their next claim)."""
        limit = self.context.settings.running_limit(request.project_id) or 0
        woken = await self.context.db.run(
            lambda session: release_slot(session, request.holder, limit)
        )
        return [RunToWake(job_id=job_id, run_id=run_id) for job_id, run_id in woken]
