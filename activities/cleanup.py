"""Deleting old finished jobs from the table (Temporal keeps histories by its own
retention) with their ended webhook deliveries, and audit entries past their own
retention (`PASTOOLS_AUDIT_RETENTION_DAYS`)."""

import asyncio
from datetime import datetime, timedelta

from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.audit.queries import delete_entries_before
from pastools_jobs.audit.trail import CLEANUP_SCHEDULE, AuditAction, record
from pastools_jobs.clock import utcnow
from pastools_jobs.repository import delete_finished_before
from pastools_jobs.webhooks.deliveries import delete_ended_before


class CleanupActivities(ActivityGroup):
    @activity.defn(name="delete_finished_jobs")
    async def delete_finished_jobs(self, max_age_days: float) -> int:
        now = utcnow()
        retention = timedelta(days=self.context.settings.audit_retention_days)
        return await asyncio.to_thread(
            self._delete, now - timedelta(days=max_age_days), now - retention, max_age_days
        )

    def _delete(self, cutoff: datetime, audit_cutoff: datetime, max_age_days: float) -> int:
        """One transaction, its own audit entry included: the entry is there exactly if the
        rows are gone. Webhook deliveries that ended go with the jobs of their age."""
        with self.context.db.transaction() as session:
            deleted = delete_finished_before(session, cutoff)
            delete_ended_before(session.connection(), cutoff)
            expired = delete_entries_before(session, audit_cutoff)
            details = {"older_than_days": max_age_days, "deleted": deleted}
            record(session, CLEANUP_SCHEDULE, AuditAction.JOBS_CLEANUP, details=details)
            if expired:
                days = self.context.settings.audit_retention_days
                details = {"older_than_days": days, "deleted": expired}
                record(session, CLEANUP_SCHEDULE, AuditAction.AUDIT_RETENTION, details=details)
            return deleted
