"""The baseline: the smallest raw Temporal workflow equivalent to a probe job.

One workflow that runs one activity, which heartbeats once per item (a probe job with
`items=1` heartbeats once). No jobs table, no search attributes, no local activities:
what the platform adds on top of the SDK is exactly what the benchmarks compare.

The activity options are the platform's (`workflows.work_options`), so
that heartbeat throttling and cancellation behave the same on both sides.
`ShapedRawWorkflow` adds exactly the platform workflow's Temporal calls for a job the
API submitted to it: the search attributes set at start and upserted at the end, and
the local activity that records the outcome (here recording nothing). A one-item job
sends no progress signal. It splits what the platform costs into what its use of
Temporal costs and what its own code (HTTP, the jobs table) costs.
This module is imported by the workflow sandbox: no side effects at import time.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from pastools_jobs.contracts import JOB_PROGRESS, JOB_STATUS
    from workflows.work_options import work_activity_options

RAW_WORKFLOW = "BenchRawWorkflow"
SHAPED_WORKFLOW = "BenchShapedWorkflow"


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
    """One activity with the platform's activity options."""

    @workflow.run
    async def run(self, work: RawWork) -> int:
        return await run_items(work)


async def run_items(work: RawWork) -> int:
    done: int = await workflow.execute_activity(raw_items, work, **work_activity_options())
    return done


@activity.defn(name="bench_raw_record")
async def raw_record(status: str) -> None:
    """Where the platform's `record_job_event` writes the row: nothing here."""


@workflow.defn(name=SHAPED_WORKFLOW)
class ShapedRawWorkflow:
    """`RawWorkflow` with the platform workflow's closing search-attribute upsert and
    local activity, in the same order (`JobWorkflow.run_job`, for a job the API started)."""

    @workflow.run
    async def run(self, work: RawWork) -> int:
        done = await run_items(work)
        workflow.upsert_search_attributes(
            [JOB_STATUS.value_set("completed"), JOB_PROGRESS.value_set(100)]
        )
        await workflow.execute_local_activity(
            raw_record, "completed", start_to_close_timeout=timedelta(seconds=10)
        )
        return done
