"""The probe job's work: process a number of items at a set pace, reporting progress
and resuming from the checkpoint."""

import asyncio

from pydantic import BaseModel
from temporalio import activity

from activities.context import ActivityGroup
from activities.progress import ProgressReporter, last_checkpoint
from pastools_jobs.contracts import Progress
from workflows.results import ProbeResult


class ItemsWork(BaseModel):
    items: int
    item_seconds: float
    verb: str


class ItemActivities(ActivityGroup):
    @activity.defn(name="process_items")
    async def process_items(self, work: ItemsWork) -> ProbeResult:
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
        return ProbeResult(items=work.items, resumed_from=start)
