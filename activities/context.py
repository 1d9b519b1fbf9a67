"""What activities need from the worker process, handed to each activity group."""

from dataclasses import dataclass

from pastools_jobs.config import Settings
from pastools_jobs.db.engine import Database


@dataclass(frozen=True)
class ActivityContext:
    settings: Settings
    db: Database


class ActivityGroup:
    """A class whose `@activity.defn` methods share the worker's context."""

    def __init__(self, context: ActivityContext) -> None:
        self.context = context
