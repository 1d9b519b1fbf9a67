"""A small real workload shared by the job types until their own work lands:
process a number of items, reporting progress and resuming from the checkpoint."""

import asyncio
from pathlib import Path

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.context import ActivityGroup
from activities.progress import ProgressReporter, last_checkpoint
from pastools_jobs.contracts import Progress
from pastools_jobs.paths import UnsafePath, resolve_under


class ItemsWork(BaseModel):
    items: int
    item_seconds: float
    verb: str


class ItemsOutcome(BaseModel):
    items: int
    resumed_from: int


class ItemActivities(ActivityGroup):
    @activity.defn(name="process_items")
    async def process_items(self, work: ItemsWork) -> ItemsOutcome:
        reporter = ProgressReporter(
            self.context.db, self.context.settings.heartbeat_interval_seconds
        )
        checkpoint = last_checkpoint()
        start = int(checkpoint.checkpoint["next_item"]) if checkpoint else 0
        for item in range(start, work.items):
            await asyncio.sleep(work.item_seconds)
            done = item + 1
            await reporter.report(
                Progress(
                    done=done,
                    total=work.items,
                    message=f"{work.verb} item {done} of {work.items}",
                    checkpoint={"next_item": done},
                ),
                force=done == work.items,
            )
        return ItemsOutcome(items=work.items, resumed_from=start)

    @activity.defn(name="count_source_lines")
    async def count_source_lines(self, source: str) -> int:
        """Lines of an import source file; a missing or unsafe file is the input's fault."""
        try:
            path = resolve_under(self.context.settings.resolved_import_dir, source)
        except UnsafePath as error:
            raise ApplicationError(
                str(error), {"source": source}, type="UnsafeSource", non_retryable=True
            ) from None
        if not path.is_file():
            raise ApplicationError(
                f"Import source '{source}' does not exist in the import directory.",
                {"source": source},
                type="SourceNotFound",
                non_retryable=True,
            )
        return await asyncio.to_thread(_count_lines, path)


def _count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(1 for _ in stream)
