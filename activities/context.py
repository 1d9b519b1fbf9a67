"""What activities need from the worker process, handed to each activity group."""

from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from activities.job import current_job_run
from activities.progress import ProgressReporter, last_checkpoint
from pastools_jobs.config import Settings
from pastools_jobs.contracts import Work
from pastools_jobs.db.engine import Database
from pastools_jobs.partitions import Partition
from pastools_jobs.storage.base import ArtifactWriter, Storage

C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class ActivityContext:
    settings: Settings
    db: Database
    storage: Storage


class ActivityGroup:
    """A class whose `@activity.defn` methods share the worker's context, and the set-up
    every job activity makes: its reporter, its checkpoint, its artifacts."""

    def __init__(self, context: ActivityContext) -> None:
        self.context = context

    def reporter(self, partition: Partition | None = None) -> ProgressReporter:
        """The running job's progress reporter, at the worker's heartbeat pace (of one of
        its partitions: the row shows the sum)."""
        interval = self.context.settings.heartbeat_interval_seconds
        return ProgressReporter(self.context.db, interval, partition)

    @staticmethod
    def resume(work: Work, checkpoint: type[C]) -> C:
        """Where the previous attempt's last heartbeat left off, or where a pause stopped
        the work (`Work.resume_from`), or the very start (`checkpoint`'s defaults)."""
        previous = last_checkpoint() or work.resume_from
        if previous is None or previous.checkpoint is None:
            return checkpoint()
        return checkpoint.model_validate(previous.checkpoint)

    def artifact(self, name: str, resume_at: int | None) -> ArtifactWriter:
        """One of the running job's artifact files (refused outside a job workflow, so
        that no two jobs ever share one), checkpointed as often as progress is
        heartbeated at most. It blocks: call it in a thread."""
        return self.context.storage.artifact_writer(
            current_job_run().job_id,
            name,
            resume_at,
            checkpoint_interval=self.context.settings.heartbeat_interval_seconds,
        )
