"""The probe job's work: process a number of items at a set pace, reporting progress
and resuming from the checkpoint."""

import asyncio

from pydantic import BaseModel
from temporalio import activity

from activities.context import ActivityGroup
from pastools_jobs.contracts import Progress, Work
from workflows.results import ProbeResult


class ItemsWork(Work):
    items: int
    item_seconds: float
    verb: str
    log_every: int = 0
    """Log one line every this many items; 0: none."""


class ItemsCheckpoint(BaseModel):
    next_item: int = 0
    """The first item not yet done: where a retry starts."""


class ItemActivities(ActivityGroup):
    @activity.defn(name="process_items")
    async def process_items(self, work: ItemsWork) -> ProbeResult:
        reporter = self.reporter()
        start = self.resume(work, ItemsCheckpoint).next_item
        for item in range(start, work.items):
            await asyncio.sleep(work.item_seconds)
            done = item + 1
            if work.log_every and done % work.log_every == 0:
                activity.logger.info("%s item %d of %d", work.verb, done, work.items)
            await reporter.report(
                Progress(
                    done=done,
                    total=work.items,
                    message=f"{work.verb} item {done} of {work.items}",
                    checkpoint=ItemsCheckpoint(next_item=done).model_dump(mode="json"),
                ),
                force=done == work.items,
            )
        return ProbeResult(items=work.items, resumed_from=start)
