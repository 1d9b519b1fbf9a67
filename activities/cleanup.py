"""Deleting old finished jobs from the table (Temporal keeps histories by its own retention)."""

import asyncio
from datetime import timedelta

from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.clock import utcnow
from pastools_jobs.repository import delete_finished_before


class CleanupActivities(ActivityGroup):
    @activity.defn(name="delete_finished_jobs")
    async def delete_finished_jobs(self, max_age_days: float) -> int:
        cutoff = utcnow() - timedelta(days=max_age_days)
        return await asyncio.to_thread(self._delete, cutoff)

    def _delete(self, cutoff: object) -> int:
        with self.context.db.transaction() as session:
            return delete_finished_before(session, cutoff)  # type: ignore[arg-type]
