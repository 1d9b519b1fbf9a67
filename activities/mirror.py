"""The local activity by which a workflow records its own state changes in the table."""

import asyncio

from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.contracts import JobEvent
from pastools_jobs.db.models import Job
from pastools_jobs.metrics import observe_finished
from pastools_jobs.mirror.apply import apply_event


class MirrorActivities(ActivityGroup):
    @activity.defn(name="record_job_event")
    async def record_job_event(self, event: JobEvent) -> None:
        await asyncio.to_thread(self._apply, event)

    def _apply(self, event: JobEvent) -> None:
        metered = self.context.settings.metrics_enabled
        with self.context.db.transaction() as session:
            changed = apply_event(session, event)
            ended = metered and changed and event.status.is_terminal
            finished = session.get(Job, event.job_id) if ended else None
        if finished is not None:
            observe_finished(finished)  # once committed
