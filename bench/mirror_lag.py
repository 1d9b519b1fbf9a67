"""Benchmark 3: how far the jobs table lags behind Temporal.

(a) Close: from the workflow's close time in Temporal to the first poll (every 10 ms,
straight from the database) that shows the row's final status. The workflow records
its outcome through a local activity just before it closes, so the table is usually
*ahead* of the close: those lags are negative.
(b) Progress: from the first `describe` that shows a new heartbeat `done` to the first
table poll that shows the row at least that far.

The baseline is Temporal's own listing, visibility (what the Web UI and
`temporal workflow list` show), observed for the same workflows at the same time:
when a list query first shows the workflow closed, or its JobProgress search
attribute at the new 10 % step. Lags are wall-clock differences on one machine;
each includes its poller's resolution (10 ms table, 20 ms visibility, 50 ms describe).
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from temporalio.client import Client

from bench.core import Report, below, latency_rows
from bench.environment import BenchEnv
from bench.observe import (
    DescribePoller,
    Observation,
    Predicate,
    TablePoller,
    Timelines,
    VisibilityPoller,
    is_terminal,
)

WAVE = 10
"""Jobs submitted together when measuring close lag: closes spread over the run."""

ITEM_MS = 200
STEP = 10


def visibility_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def submit(http: httpx.AsyncClient, project: str, items: int, item_ms: int = 0) -> str:
    body = {"type": "probe", "project_id": project, "params": {"items": items, "item_ms": item_ms}}
    response = await http.post("/api/jobs", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


async def close_times(client: Client, job_ids: list[str]) -> dict[str, float]:
    descriptions = await asyncio.gather(
        *(client.get_workflow_handle(job_id).describe() for job_id in job_ids)
    )
    times = {}
    for job_id, description in zip(job_ids, descriptions, strict=True):
        assert description.close_time is not None, f"{job_id} is still open"
        times[job_id] = description.close_time.timestamp()
    return times


def is_closed(seen: Observation) -> bool:
    return seen.status != "running"


async def close_lags(env: BenchEnv) -> tuple[list[float], list[float]]:
    """Lags (ms) of the table and of visibility behind each workflow's close time."""
    stack = await env.platform()
    client = await env.client()
    since = visibility_stamp(datetime.now(UTC) - timedelta(seconds=1))
    query = (
        f"TaskQueue = '{stack.task_queue}' AND ExecutionStatus != 'Running' "
        f"AND StartTime >= '{since}'"
    )
    project = f"close-{uuid.uuid4().hex[:8]}"
    job_ids: list[str] = []
    with TablePoller(stack.database_url) as table:
        async with (
            VisibilityPoller(client, query) as visibility,
            stack.async_client() as http,
        ):
            for _ in range(env.pick(1, 10)):
                wave = await asyncio.gather(*(submit(http, project, 1) for _ in range(WAVE)))
                table.watch(wave)
                for job_id in wave:
                    await table.wait(job_id, is_terminal)
                    await visibility.wait(job_id, is_closed)
                job_ids += wave
    closed = await close_times(client, job_ids)
    return lags_after(closed, table, is_terminal), lags_after(closed, visibility, is_closed)


def lags_after(events: dict[str, float], seen: Timelines, predicate: Predicate) -> list[float]:
    """Milliseconds from each event to the first observation satisfying `predicate`."""
    lags = []
    for job_id, at in events.items():
        first = seen.first(job_id, predicate)
        assert first is not None, f"{job_id} never seen"
        lags.append((first - at) * 1000)
    return lags


def reached(done: int) -> Predicate:
    """At least `done` items (or, from visibility, percent) seen."""
    return lambda seen: seen.done >= done


def progress_events(describe: Timelines, job_id: str) -> list[Observation]:
    """Each new heartbeat `done` of the running activity, when describe first showed it."""
    return [seen for seen in describe.timeline(job_id) if seen.done > 0]


def progress_lag_samples(
    job_id: str, items: int, describe: Timelines, table: Timelines, visibility: Timelines
) -> tuple[list[float], list[float]]:
    """Per heartbeat: table lag; per 10 % step that a heartbeat crossed: visibility lag."""
    table_lags: list[float] = []
    visibility_lags: list[float] = []
    steps_done: set[int] = set()
    for event in progress_events(describe, job_id):
        row = table.first(job_id, reached(event.done))
        assert row is not None, f"{job_id} never reached {event.done} in the table"
        table_lags.append((row - event.at) * 1000)
        step = event.done * 100 // items // STEP * STEP
        if STEP <= step < 100 and step not in steps_done:
            steps_done.add(step)
            listed = visibility.first(job_id, reached(step))
            if listed is not None:
                visibility_lags.append((listed - event.at) * 1000)
    return table_lags, visibility_lags


async def progress_lags(env: BenchEnv) -> tuple[list[float], list[float]]:
    """Lags (ms) behind describe's heartbeat details: the table's, visibility's."""
    stack = await env.platform()
    client = await env.client()
    jobs, items = env.pick(2, 6), env.pick(10, 50)
    project = f"progress-{uuid.uuid4().hex[:8]}"
    async with stack.async_client() as http:
        job_ids = list(
            await asyncio.gather(*(submit(http, project, items, ITEM_MS) for _ in range(jobs)))
        )
    listed = ", ".join(f"'{job_id}'" for job_id in job_ids)
    with TablePoller(stack.database_url) as table:
        table.watch(job_ids)
        describe = DescribePoller(client)
        describe.watched.update(job_ids)
        visibility = VisibilityPoller(client, f"WorkflowId IN ({listed})")
        async with describe, visibility:
            for job_id in job_ids:
                await table.wait(job_id, is_terminal, timeout=items * ITEM_MS / 1000 + 60)
    table_lags: list[float] = []
    visibility_lags: list[float] = []
    for job_id in job_ids:
        job_table, job_visibility = progress_lag_samples(job_id, items, describe, table, visibility)
        table_lags += job_table
        visibility_lags += job_visibility
    return table_lags, visibility_lags


async def run(env: BenchEnv, report: Report) -> None:
    target = {"p99": below(1000, "ms")}
    table, visibility = await close_lags(env)
    report.rows += latency_rows(
        "3a mirror lag", "close time → row final", table, visibility, "visibility", target
    )
    table, visibility = await progress_lags(env)
    report.rows += latency_rows(
        "3b mirror lag",
        f"heartbeat in describe → row progress, item_ms={ITEM_MS}",
        table,
        visibility,
        "visibility JobProgress",
        target,
    )
