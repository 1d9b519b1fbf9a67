"""The local activities by which a workflow records its own state changes in the table."""

import asyncio

from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.contracts import JobEvent, PauseChange
from pastools_jobs.metrics import observe_finished
from pastools_jobs.mirror.apply import apply_event, apply_pause


class MirrorActivities(ActivityGroup):
    @activity.defn(name="record_job_event")
    async def record_job_event(self, event: JobEvent) -> None:
        await asyncio.to_thread(self._apply, event)

    @activity.defn(name="record_pause")
    async def record_pause(self, change: PauseChange) -> None:
        await asyncio.to_thread(self._pause, change)

    def _pause(self, change: PauseChange) -> None:
        with self.context.db.writing() as connection:
            apply_pause(connection, change)

    def _apply(self, event: JobEvent) -> None:
        with self.context.db.transaction() as session:
            applied = apply_event(session, event)
        if applied and event.status.is_terminal and self.context.settings.metrics_enabled:
            observe_finished(event, applied.started_at)  # once committed
