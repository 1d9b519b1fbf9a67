"""Benchmark 9: B's queue wait behind A's backlog, with Temporal's fairness off and on.

Two dev servers in the same run: the platform's own (`start_dev_server`, fairness on) and
the same command without the fairness keys. On each, a worker with two activity slots,
a backlog of project A's probe-like workflows (fairness key A, as `JobLauncher` gives),
then one of project B: its wait is from its start to its activity's start (the
ActivityTaskStarted event's time, the server's clock).
"""

import asyncio
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import Priority
from temporalio.service import RPCError
from temporalio.worker import Worker

from bench.core import Report, Row, below
from bench.environment import BenchEnv
from bench.raw import RawWork, RawWorkflow, raw_items
from pastools_jobs.config import Settings
from pastools_jobs.devserver import FAIRNESS_DYNAMIC_CONFIG, dev_server_command
from pastools_jobs.process import child_process_options, stop_process
from pastools_jobs.temporal import fairness_key
from tests.support.services import free_port

SLOTS = 2
ITEM_MS = 100


@dataclass(frozen=True)
class Unfair:
    """A dev server like the platform's but for the fairness keys."""

    process: subprocess.Popen[bytes]
    address: str


def start_unfair(base: Path) -> Unfair:
    port = free_port()
    settings = Settings(data_dir=base, temporal_port=port, ui_port=free_port())
    command = dev_server_command(settings)
    for key, value in FAIRNESS_DYNAMIC_CONFIG.items():
        at = command.index(f"{key}={value}")
        del command[at - 1 : at + 1]
    base.mkdir(parents=True, exist_ok=True)
    with (base / "temporal.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, **child_process_options()
        )
    return Unfair(process, f"127.0.0.1:{port}")


async def connect(address: str, deadline_seconds: float = 60) -> Client:
    give_up = time.monotonic() + deadline_seconds
    while True:
        try:
            return await Client.connect(address)
        except RuntimeError:
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.3)


async def b_wait_seconds(client: Client, backlog: int) -> float:
    """Seconds B's one workflow waited for its activity to start behind A's backlog."""
    task_queue = f"bench-fair-{uuid.uuid4().hex[:8]}"
    gate = asyncio.Semaphore(32)
    work = RawWork(items=1, item_ms=ITEM_MS)

    async def start(project: str) -> str:
        async with gate:
            handle = await client.start_workflow(
                RawWorkflow.run,
                work,
                id=f"{project}-{uuid.uuid4().hex}",
                task_queue=task_queue,
                priority=Priority(fairness_key=fairness_key(project)),
            )
            return handle.id

    a_ids = await asyncio.gather(*(start("a") for _ in range(backlog)))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[RawWorkflow],
        activities=[raw_items],
        max_concurrent_activities=SLOTS,
    ):
        await asyncio.sleep(1)  # the worker is draining A's backlog
        b_id = await start("b")
        handle = client.get_workflow_handle(b_id)
        await asyncio.wait_for(handle.result(), timeout=backlog * ITEM_MS / 1000 + 60)
        times: dict[int, float] = {}
        async for event in handle.fetch_history_events():
            times.setdefault(event.event_type, event.event_time.ToMicroseconds() / 1e6)
    await asyncio.gather(*(terminate(client, job_id) for job_id in a_ids))
    started = times[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
    return times[EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED] - started


async def terminate(client: Client, workflow_id: str) -> None:
    try:
        await client.get_workflow_handle(workflow_id).terminate("benchmark over")
    except RPCError:  # closed already: nothing to stop
        return


async def run(env: BenchEnv, report: Report) -> None:
    backlog = env.pick(50, 500)
    unfair = start_unfair(env.workdir / "temporal-unfair")
    env.on_close(lambda: stop_process(unfair.process))
    off = await b_wait_seconds(await connect(unfair.address), backlog)
    on = await b_wait_seconds(await env.client(), backlog)
    report.rows.append(
        Row(
            benchmark="10 fair shares",
            metric=f"B's queue wait behind A's backlog of {backlog}, {SLOTS} activity slots, "
            f"{ITEM_MS} ms jobs",
            unit="s",
            platform=on,
            baseline=off,
            baseline_name="fairness off",
            target=below(5, "s"),
        )
    )
