"""Benchmark 2: submit latency, POST /api/jobs against the raw client's `start_workflow`.

Requests are sequential and alternate between the two sides, so that whatever else
runs on the machine (including the jobs just submitted, which the workers execute)
weighs on both alike. The platform's request does more by design: it checks the token,
and commits the row (and its count) before starting the workflow, so its overhead over
the raw start is what the target (p99 at most 1.5 times raw) bounds.
"""

import time
import uuid

import httpx
from temporalio.client import Client

from bench.core import Report, latency_rows, ratio_at_most
from bench.environment import BenchEnv
from bench.raw import RawWork, RawWorkflow


async def post_ms(http: httpx.AsyncClient, project: str) -> float:
    body = {"type": "probe", "project_id": project, "params": {"items": 1}}
    started = time.perf_counter()
    response = await http.post("/api/jobs", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 201:
        raise RuntimeError(f"submit failed: {response.status_code} {response.text}")
    return elapsed


async def start_ms(client: Client, task_queue: str) -> float:
    started = time.perf_counter()
    await client.start_workflow(
        RawWorkflow.run, RawWork(items=1), id=f"raw-{uuid.uuid4().hex}", task_queue=task_queue
    )
    return (time.perf_counter() - started) * 1000


async def run(env: BenchEnv, report: Report) -> None:
    requests = env.pick(20, 200)
    stack = await env.platform()
    raw = await env.raw()
    client = await env.client()
    project = f"submit-{uuid.uuid4().hex[:8]}"
    platform: list[float] = []
    baseline: list[float] = []
    async with stack.async_client() as http:
        for _ in range(requests):
            platform.append(await post_ms(http, project))
            baseline.append(await start_ms(client, raw.task_queue))
    report.rows += latency_rows(
        "2 submit latency",
        "POST /api/jobs vs start_workflow, sequential",
        platform,
        baseline,
        "raw start_workflow",
        {"p99": ratio_at_most(1.5)},
    )
