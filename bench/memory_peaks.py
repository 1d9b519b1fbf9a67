"""Benchmark 6: peak RSS (VmHWM) of the API and worker processes under load.

Two loads: load 1 (the throughput benchmark's trivial jobs, reused when it ran in the
same invocation) and 50 jobs reporting progress at once. The worker's baseline is the
raw worker under the same load (50 raw workflows heartbeating at the same pace); the
API has no raw counterpart, so its baseline is the same API process at rest: the ratio
is what the load costs it.
"""

import asyncio
import uuid

from bench.core import Report, Row
from bench.environment import BenchEnv, wait_completed
from bench.memory import peak_mb, reset_peak
from bench.raw import RawWork, RawWorkflow
from bench.throughput import load_one

JOBS = 50
ITEMS = 20
ITEM_MS = 250
"""Five seconds of work each: all 50 report progress at the same time."""


async def platform_progress_peaks(env: BenchEnv, jobs: int) -> tuple[float, float]:
    """Peak RSS (MiB) of the API and of the worker while `jobs` jobs report progress."""
    stack = await env.platform()
    assert stack.api is not None and stack.worker is not None
    project = f"memory-{uuid.uuid4().hex[:8]}"
    body = {"type": "probe", "project_id": project, "params": {"items": ITEMS, "item_ms": ITEM_MS}}
    reset_peak(stack.api.pid, stack.worker.pid)
    async with stack.async_client() as http:
        for response in await asyncio.gather(
            *(http.post("/api/jobs", json=body) for _ in range(jobs))
        ):
            response.raise_for_status()
        await wait_completed(http, project, jobs, timeout=120)
    return peak_mb(stack.api.pid), peak_mb(stack.worker.pid)


async def raw_progress_peak(env: BenchEnv, jobs: int) -> float:
    """Peak RSS (MiB) of the raw worker while `jobs` raw workflows heartbeat."""
    raw = await env.raw()
    client = await env.client()
    reset_peak(raw.process.pid)
    handles = await asyncio.gather(
        *(
            client.start_workflow(
                RawWorkflow.run,
                RawWork(items=ITEMS, item_ms=ITEM_MS),
                id=f"raw-memory-{uuid.uuid4().hex}",
                task_queue=raw.task_queue,
            )
            for _ in range(jobs)
        )
    )
    await asyncio.gather(*(handle.result() for handle in handles))
    return peak_mb(raw.process.pid)


async def run(env: BenchEnv, report: Report) -> None:
    load = await load_one(env)
    jobs = env.pick(10, JOBS)
    api_peak, worker_peak = await platform_progress_peaks(env, jobs)
    raw_peak = await raw_progress_peak(env, jobs)
    idle = load.peaks["api idle"]
    name = "6 memory"
    report.rows += [
        Row(name, f"API peak RSS, load 1 (N={load.jobs})", "MiB", load.peaks["api"], idle,
            "API at rest"),
        Row(name, f"worker peak RSS, load 1 (N={load.jobs})", "MiB", load.peaks["worker"],
            load.peaks["raw worker"], "raw worker"),
        Row(name, f"API peak RSS, {jobs} jobs reporting progress", "MiB", api_peak, idle,
            "API at rest"),
        Row(name, f"worker peak RSS, {jobs} jobs reporting progress", "MiB", worker_peak,
            raw_peak, "raw worker"),
    ]  # fmt: skip
