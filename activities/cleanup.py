"""Deleting old finished jobs from the table (Temporal keeps histories by its own retention)."""

import asyncio
from datetime import timedelta

from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.clock import utcnow
from pastools_jobs.repository import delete_finished_before
from pastools_jobs.webhooks.deliveries import delete_ended_before


class CleanupActivities(ActivityGroup):
    @activity.defn(name="delete_finished_jobs")
    async def delete_finished_jobs(self, max_age_days: float) -> int:
        cutoff = utcnow() - timedelta(days=max_age_days)
        return await asyncio.to_thread(self._delete, cutoff)

    def _delete(self, cutoff: object) -> int:
        """Old finished jobs (how many), and the webhook deliveries of the same age."""
        with self.context.db.transaction() as session:
            deleted = delete_finished_before(session, cutoff)  # type: ignore[arg-type]
            delete_ended_before(session.connection(), cutoff)  # type: ignore[arg-type]
            return deleted
