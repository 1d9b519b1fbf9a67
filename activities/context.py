"""What activities need from the worker process, handed to each activity group."""

from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pastools_jobs.config import Settings
from pastools_jobs.datasets.artifacts import job_artifacts_dir
from pastools_jobs.db.engine import Database


@dataclass(frozen=True)
class ActivityContext:
    settings: Settings
    db: Database


class ActivityGroup:
    """A class whose `@activity.defn` methods share the worker's context."""

    def __init__(self, context: ActivityContext) -> None:
        self.context = context

    def artifacts_dir(self) -> Path:
        """The running job's own artifacts directory.

        An activity run outside a job workflow has no job to file its artifacts under;
        it is refused rather than given a directory that jobs would share."""
        job_id = activity.info().workflow_id
        if not job_id:
            raise ApplicationError(
                "Artifacts are written only by activities of a job workflow.",
                type="NoJob",
                non_retryable=True,
            )
        return job_artifacts_dir(self.context.settings.artifacts_dir, job_id)
