"""Benchmark 9: the cost of per-job logs. A probe job of 10,000 items logging a line per
item against the same job logging nothing, on one stack, and against the same logging job
on a stack alike but for `PASTOOLS_JOB_LOG_LINES=0` (capture off), in rounds whose order
alternates. A job's time is its row's `completed_at - started_at`: its work, its last
report and its log's last write, without the wait for a worker."""

import statistics
import uuid
from datetime import datetime

from bench.core import Report, Row, ratio_at_most
from bench.environment import BenchEnv, wait_completed
from bench.throughput import rotated

ITEMS = 10_000
ROUNDS = 5


async def job_seconds(env: BenchEnv, side: str, items: int) -> float:
    """One probe job of `items`, logging every item unless the side says not: its seconds."""
    stack = await env.job_log_platform(capture=side != "capture off")
    project = f"logs-{uuid.uuid4().hex[:8]}"
    log_every = 0 if side == "not logging" else 1
    params = {"items": items, "log_every": log_every}
    async with stack.async_client() as http:
        body = {"type": "probe", "project_id": project, "params": params}
        job = (await http.post("/api/jobs", json=body)).raise_for_status().json()
        await wait_completed(http, project, 1, timeout=300, interval=0.1)
        done = (await http.get(f"/api/jobs/{job['id']}")).raise_for_status().json()
    started = datetime.fromisoformat(done["started_at"])
    return (datetime.fromisoformat(done["completed_at"]) - started).total_seconds()


async def run(env: BenchEnv, report: Report) -> None:
    items = env.pick(500, ITEMS)
    rounds = env.pick(1, ROUNDS)
    # The small size (the smoke test) starts no stack of its own.
    sides = ["logging", "not logging", *(["capture off"] if env.full else [])]
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    for index in range(rounds):
        for side in rotated(sides, index):
            seconds[side].append(await job_seconds(env, side, items))
    median = {side: statistics.median(times) for side, times in seconds.items()}
    where = f"probe items={items}, item_ms=0, median of {rounds}, postgresql"
    report.rows.append(
        Row(
            "9 job logs",
            f"a job logging {items:,} lines (1,000 kept) vs the same job not logging, {where}",
            "s",
            median["logging"],
            median["not logging"],
            "not logging",
            ratio_at_most(1.1),
        )
    )
    if "capture off" in median:
        report.rows.append(
            Row(
                "9 job logs",
                f"the same logging job, capture on vs PASTOOLS_JOB_LOG_LINES=0, {where}",
                "s",
                median["logging"],
                median["capture off"],
                "capture off",
                ratio_at_most(1.1),
            )
        )
