"""Benchmark 4: cancel latency, POST .../cancel against the raw client's `cancel()`.

A cancel reaches an activity only with the response to its next heartbeat, and the
SDK sends heartbeats at most once per throttle interval (1 s here), so the latency
depends on where in that interval the cancel lands: each cancel waits a random
fraction of a second after the job is running, to sample the whole interval.

"Stopped" is the ActivityTaskCanceled event in the workflow's history (the worker
reported that the activity stopped; its time is the server's). The second measure is
what a user waits for: the row turning `cancelled` (polled every 10 ms), against the
raw workflow closing as canceled. Both sides use WAIT_CANCELLATION_COMPLETED.
"""

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from bench.core import Report, at_most, latency_rows
from bench.environment import BenchEnv
from bench.mirror_lag import submit
from bench.observe import Observation, TablePoller
from bench.raw import RawWork, RawWorkflow

ITEMS = 600
ITEM_MS = 100
"""A minute of work at ten heartbeats a second: always still running when cancelled."""

CONCURRENCY = 10
TARGET_MS = 2000.0
"""Two heartbeat intervals."""


@dataclass(frozen=True)
class Cancelled:
    """Milliseconds from the cancel request to the activity stopped, and to the outcome."""

    activity_ms: float
    outcome_ms: float


async def event_times(client: Client, workflow_id: str) -> dict[EventType.ValueType, float]:
    """Wall-clock time (epoch seconds) of the first event of each type in the history."""
    times: dict[EventType.ValueType, float] = {}
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        times.setdefault(event.event_type, event.event_time.ToMicroseconds() / 1e6)
    return times


def running(seen: Observation) -> bool:
    return seen.status == "running" and seen.done >= 1


async def jitter() -> None:
    await asyncio.sleep(random.uniform(0, 1))


async def cancel_platform_job(
    http: httpx.AsyncClient, table: TablePoller, client: Client, project: str
) -> Cancelled:
    job_id = await submit(http, project, ITEMS, ITEM_MS)
    table.watch([job_id])
    await table.wait(job_id, running)
    await jitter()
    asked = time.time()
    response = await http.post(f"/api/jobs/{job_id}/cancel")
    if response.status_code != 202:
        raise RuntimeError(f"cancel refused: {response.status_code} {response.text}")
    row = await table.wait(job_id, lambda seen: seen.status == "cancelled", timeout=60)
    events = await event_times(client, job_id)
    stopped = events[EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED]
    return Cancelled((stopped - asked) * 1000, (row - asked) * 1000)


async def wait_heartbeating(handle: WorkflowHandle[RawWorkflow, int]) -> None:
    """Until the raw activity's first heartbeat has reached the server."""
    async with asyncio.timeout(60):
        while True:
            pending = (await handle.describe()).raw_description.pending_activities
            if pending and pending[0].heartbeat_details.payloads:
                return
            await asyncio.sleep(0.05)


async def cancel_raw_workflow(client: Client, task_queue: str) -> Cancelled:
    handle = await client.start_workflow(
        RawWorkflow.run,
        RawWork(items=ITEMS, item_ms=ITEM_MS),
        id=f"raw-cancel-{uuid.uuid4().hex}",
        task_queue=task_queue,
    )
    await wait_heartbeating(handle)
    await jitter()
    asked = time.time()
    await handle.cancel()
    try:
        await handle.result()
        raise RuntimeError("the raw workflow completed instead of being cancelled")
    except WorkflowFailureError as failure:
        if not isinstance(failure.cause, CancelledError):
            raise
    events = await event_times(client, handle.id)
    stopped = events[EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED]
    closed = events[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED]
    return Cancelled((stopped - asked) * 1000, (closed - asked) * 1000)


async def bounded(limit: asyncio.Semaphore, work: Callable[[], Awaitable[Cancelled]]) -> Cancelled:
    async with limit:
        return await work()


async def run(env: BenchEnv, report: Report) -> None:
    count = env.pick(4, 50)
    stack = await env.platform()
    raw = await env.raw()
    client = await env.client()
    project = f"cancel-{uuid.uuid4().hex[:8]}"
    limit = asyncio.Semaphore(CONCURRENCY)
    with TablePoller(stack.database_url) as table:
        async with stack.async_client() as http:
            # Interleaved, so that both sides run under the same load.
            outcomes = await asyncio.gather(
                *(
                    bounded(limit, work)
                    for _ in range(count)
                    for work in (
                        lambda: cancel_platform_job(http, table, client, project),
                        lambda: cancel_raw_workflow(client, raw.task_queue),
                    )
                )
            )
    platform, baseline = outcomes[0::2], outcomes[1::2]
    target = {"p50": at_most(TARGET_MS, "ms"), "p99": at_most(TARGET_MS, "ms")}
    report.rows += latency_rows(
        "4 cancel latency",
        "cancel → ActivityTaskCanceled",
        [c.activity_ms for c in platform],
        [c.activity_ms for c in baseline],
        "raw cancel()",
        target,
    )
    report.rows += latency_rows(
        "4 cancel latency",
        "cancel → row `cancelled` (raw: workflow closed)",
        [c.outcome_ms for c in platform],
        [c.outcome_ms for c in baseline],
        "raw cancel()",
        target,
    )
