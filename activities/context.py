"""What activities need from the worker process, handed to each activity group."""

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from activities.job import current_job_run
from activities.progress import ProgressReporter, last_checkpoint
from pastools_jobs.config import Settings
from pastools_jobs.datasets.artifacts import ResumableFile, job_artifacts_dir
from pastools_jobs.db.engine import Database

C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class ActivityContext:
    settings: Settings
    db: Database


class ActivityGroup:
    """A class whose `@activity.defn` methods share the worker's context, and the set-up
    every job activity makes: its reporter, its checkpoint, its artifacts."""

    def __init__(self, context: ActivityContext) -> None:
        self.context = context

    def reporter(self) -> ProgressReporter:
        """The running job's progress reporter, at the worker's heartbeat pace."""
        return ProgressReporter(self.context.db, self.context.settings.heartbeat_interval_seconds)

    @staticmethod
    def resume(checkpoint: type[C]) -> C:
        """Where the previous attempt's last heartbeat left off, or a first attempt's
        start (`checkpoint`'s defaults)."""
        previous = last_checkpoint()
        if previous is None or previous.checkpoint is None:
            return checkpoint()
        return checkpoint.model_validate(previous.checkpoint)

    def artifacts_dir(self) -> Path:
        """The running job's own artifacts directory; refused outside a job workflow, so
        that no two jobs ever share one."""
        return job_artifacts_dir(self.context.settings.artifacts_dir, current_job_run().job_id)

    def artifact(self, name: str, resume_at: int | None) -> ResumableFile:
        """One of the job's artifact files, synced as often as progress is heartbeated so
        that each checkpoint can name a size already on disk."""
        return ResumableFile(
            self.artifacts_dir(),
            name,
            resume_at,
            checkpoint_interval=self.context.settings.heartbeat_interval_seconds,
        )
