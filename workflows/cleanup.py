"""The periodic removal of old finished jobs, run by a Temporal schedule."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cleanup import CleanupActivities


@workflow.defn(name="CleanupFinishedJobs")
class CleanupFinishedJobs:
    @workflow.run
    async def run(self, max_age_days: float) -> int:
        return await workflow.execute_activity_method(
            CleanupActivities.delete_finished_jobs,
            max_age_days,
            start_to_close_timeout=timedelta(minutes=10),
        )
