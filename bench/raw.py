"""The baseline: the smallest raw Temporal workflow equivalent to a probe job.

One workflow that runs one activity, which heartbeats once per item (a probe job with
`items=1` heartbeats once). No jobs table, no search attributes, no local activities:
what the platform adds on top of the SDK is exactly what the benchmarks compare.

The activity options match the platform's (`JobWorkflow.run_activity_options`), so
that heartbeat throttling and cancellation behave the same on both sides.
This module is imported by the workflow sandbox: no side effects at import time.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

RAW_WORKFLOW = "BenchRawWorkflow"


@dataclass(frozen=True)
class RawWork:
    """`items` heartbeats, `item_ms` apart: the probe job's parameters."""

    items: int = 1
    item_ms: int = 0


@activity.defn(name="bench_raw_items")
async def raw_items(work: RawWork) -> int:
    """Heartbeat after each item, like the platform's `process_items` (minus the table)."""
    for item in range(work.items):
        await asyncio.sleep(work.item_ms / 1000)
        activity.heartbeat({"done": item + 1, "total": work.items})
    return work.items


@workflow.defn(name=RAW_WORKFLOW)
class RawWorkflow:
    """One activity with the platform's heartbeat timeout, retries and cancellation type."""

    @workflow.run
    async def run(self, work: RawWork) -> int:
        return await workflow.execute_activity(
            raw_items,
            work,
            start_to_close_timeout=timedelta(hours=24),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(seconds=30),
                maximum_attempts=10,
            ),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
