"""The shared body of the job types whose real work is still to come: process items."""

from typing import Any, ClassVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.items import ItemActivities, ItemsWork
    from workflows.lifecycle import JobWorkflow
    from workflows.params import ItemsParams


class ItemsJob(JobWorkflow):
    params_model = ItemsParams
    activity_groups = (ItemActivities,)
    verb: ClassVar[str]

    async def execute(self, params: ItemsParams) -> dict[str, Any]:
        outcome = await workflow.execute_activity_method(
            ItemActivities.process_items,
            ItemsWork(items=params.items, item_seconds=params.item_ms / 1000, verb=self.verb),
            **self.run_activity_options(),
        )
        return {"items": outcome.items, "resumed_from": outcome.resumed_from}
