"""Benchmark 1: throughput of trivial jobs, platform over HTTP against the raw SDK.

Both sides start N one-heartbeat workflows from 32 concurrent clients on the same dev
server, with workers of the same settings, and the clock stops when all of them have
completed: for the platform when the jobs table says so (that is what a user sees),
for the raw SDK when every workflow result has arrived. Two more sides split the gap:
the raw workflow with the platform's Temporal calls, started from the SDK, then
submitted over HTTP to a bare relay (`bench.relay`). The peak RSS of each process
during these runs is kept for the memory benchmark ("load 1").

`run_metrics` (`--only metrics`) runs the same platform side twice, with metrics on
(every exporter served and scraped) and off, in interleaved rounds: what recording
metrics costs the throughput.

The workload is the `probe` job with `items=1` (one heartbeat): the issue's `export`
job took `items` when it was written; it is now a real export of a project's records,
and `probe` is the job type kept for exactly this kind of measurement.
"""

import asyncio
import functools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from temporalio.client import Client, WorkflowHandle

from bench import cpu
from bench.core import Report, Row, number, ratio_at_least, ratio_at_most
from bench.environment import BACKENDS, BenchEnv, Relay, wait_completed
from bench.memory import peak_mb, reset_peak
from bench.raw import RawWork, RawWorkflow, ShapedRawWorkflow
from pastools_jobs.contracts import queued_attributes
from tests.support.services import Stack

T = TypeVar("T")

CLIENTS = 32
ROUNDS = 4
"""The full size's N jobs per side run in this many interleaved rounds."""
IDLE_SECONDS = 2.0
SHAPED = "raw + platform's Temporal calls"
HOP = "… + bare HTTP hop"


@dataclass
class LoadOne:
    """Rates and peak RSS (MiB) of one throughput run, shared with the memory benchmark."""

    jobs: int
    rounds: int
    raw_rate: float = 0.0
    shaped_rate: float = 0.0
    """The raw workflow with the platform workflow's Temporal calls (`ShapedRawWorkflow`)."""
    hop_rate: float = 0.0
    """`ShapedRawWorkflow` submitted over HTTP to the bare relay (`bench.relay`)."""
    platform_rates: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    """CPU seconds of each process during each side's rounds: side -> process -> seconds."""


async def in_lanes(count: int, lanes: int, work: Callable[[int], Awaitable[None]]) -> None:
    """Run `work(0..count-1)` from `lanes` concurrent clients, each taking the next index."""
    indexes = iter(range(count))

    async def lane() -> None:
        for index in indexes:
            await work(index)

    await asyncio.gather(*(lane() for _ in range(lanes)))


async def platform_seconds(stack: Stack, jobs: int) -> float:
    """Seconds from the first POST until the table shows every job completed."""
    project = f"load-{uuid.uuid4().hex[:8]}"
    body = {"type": "probe", "project_id": project, "params": {"items": 1}}
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=stack.url, headers=stack.auth_headers, timeout=120, limits=limits
    ) as http:

        async def submit(_index: int) -> None:
            response = await http.post("/api/jobs", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"submit failed: {response.status_code} {response.text}")

        started = time.perf_counter()
        await in_lanes(jobs, CLIENTS, submit)
        await wait_completed(http, project, jobs, timeout=600, interval=0.1)
        return time.perf_counter() - started


async def relay_seconds(relay: Relay, client: Client, jobs: int) -> float:
    """Seconds from the first POST to the bare relay until the last workflow result has
    arrived: the platform's clients in front, the shaped raw workflow behind."""
    body = {"project_id": f"load-{uuid.uuid4().hex[:8]}"}
    workflow_ids: list[str] = []
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=relay.url, timeout=120, limits=limits) as http:

        async def submit(_index: int) -> None:
            response = await http.post("/workflows", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"relay failed: {response.status_code} {response.text}")
            workflow_ids.append(response.json()["id"])

        started = time.perf_counter()
        await in_lanes(jobs, CLIENTS, submit)
        await all_results([client.get_workflow_handle(w) for w in workflow_ids])
        return time.perf_counter() - started


async def all_results(handles: list[WorkflowHandle[Any, Any]]) -> None:
    """Wait for every handle's result from `CLIENTS` lanes, as the raw side's clients do."""

    async def results(lane: int) -> None:
        for handle in handles[lane::CLIENTS]:
            await handle.result()

    await asyncio.gather(*(results(lane) for lane in range(CLIENTS)))


async def raw_seconds(client: Client, task_queue: str, jobs: int, *, shaped: bool = False) -> float:
    """Seconds from the first start until the last workflow result has arrived; `shaped`
    runs `ShapedRawWorkflow`, started with the platform's search attributes."""
    handles: list[WorkflowHandle[Any, int]] = []
    project = f"load-{uuid.uuid4().hex[:8]}"

    async def start(_index: int) -> None:
        handle: WorkflowHandle[Any, int] = await client.start_workflow(
            ShapedRawWorkflow.run if shaped else RawWorkflow.run,
            RawWork(items=1),
            id=f"raw-{uuid.uuid4().hex}",
            task_queue=task_queue,
            search_attributes=queued_attributes("probe", project) if shaped else None,
        )
        handles.append(handle)

    started = time.perf_counter()
    await in_lanes(jobs, CLIENTS, start)
    await all_results(handles)
    return time.perf_counter() - started


async def idle_api_peak(stack: Stack) -> float:
    """The API's peak RSS with no requests: the memory benchmark's baseline for the API."""
    assert stack.api is not None
    reset_peak(stack.api.pid)
    await asyncio.sleep(IDLE_SECONDS)
    return peak_mb(stack.api.pid)


def rotated(sides: list[T], by: int) -> list[T]:
    return sides[by % len(sides) :] + sides[: by % len(sides)]


async def load_one(env: BenchEnv) -> LoadOne:
    """Run load 1 once per benchmark run, cached for the memory benchmark.

    The full size runs in interleaved rounds, each side's turn rotating, so that other
    load on a shared machine (or the dev server's growing state) weighs on every side
    alike; a side's rate is its jobs over the sum of its rounds' times.
    """
    cached = env.shared.get("load1")
    if isinstance(cached, LoadOne):
        return cached
    rounds = env.pick(1, ROUNDS)
    load = LoadOne(jobs=env.pick(20, 1000), rounds=rounds)
    raw = await env.raw()
    relay = await env.relay()
    client = await env.client()
    stacks = {backend: await env.platform(backend) for backend in BACKENDS}
    main = stacks["postgresql"]
    assert main.api is not None and main.worker is not None
    load.peaks["api idle"] = await idle_api_peak(main)
    reset_peak(raw.process.pid, main.api.pid, main.worker.pid)
    sides: dict[str, Callable[[int], Awaitable[float]]] = {
        "raw": lambda n: raw_seconds(client, raw.task_queue, n),
        SHAPED: lambda n: raw_seconds(client, raw.task_queue, n, shaped=True),
        HOP: lambda n: relay_seconds(relay, client, n),
        **{b: functools.partial(platform_seconds, stack) for b, stack in stacks.items()},
    }
    pids = await process_ids(env, raw.process.pid, relay.process.pid, stacks)
    seconds = dict.fromkeys(sides, 0.0)
    load.cpu = {side: dict.fromkeys([*pids, cpu.CLIENTS], 0.0) for side in sides}
    for index in range(rounds):
        for side in rotated(list(sides), index):
            before = cpu.snapshot(pids)
            seconds[side] += await sides[side](load.jobs // rounds)
            for name, spent in cpu.snapshot(pids).items():
                load.cpu[side][name] += spent - before[name]
    load.raw_rate = load.jobs / seconds.pop("raw")
    load.shaped_rate = load.jobs / seconds.pop(SHAPED)
    load.hop_rate = load.jobs / seconds.pop(HOP)
    load.platform_rates = {side: load.jobs / total for side, total in seconds.items()}
    load.peaks |= {
        "raw worker": peak_mb(raw.process.pid),
        "api": peak_mb(main.api.pid),
        "worker": peak_mb(main.worker.pid),
    }
    env.shared["load1"] = load
    return load


async def process_ids(
    env: BenchEnv, raw_pid: int, relay_pid: int, stacks: dict[str, Stack]
) -> dict[str, int]:
    """The processes whose CPU the throughput run splits: every one of the run's services."""
    pids = {
        "dev server": (await env.temporal()).process.pid,
        "raw worker": raw_pid,
        "HTTP relay": relay_pid,
    }
    for backend, stack in stacks.items():
        assert stack.api is not None and stack.worker is not None
        pids |= {f"API ({backend})": stack.api.pid, f"worker ({backend})": stack.worker.pid}
    return pids | {"PostgreSQL server": (await env.postgres()).pid}


def cpu_section(load: LoadOne) -> str:
    """CPU seconds per 1,000 jobs of each process during each side's rounds.

    Processes of the idle side still run (a stack's mirror sweeps, the raw worker's
    polls); their small figures are part of what each side cost the machine.
    """
    sides = list(load.cpu)
    names = list(next(iter(load.cpu.values())))
    per_thousand = {side: {n: s * 1000 / load.jobs for n, s in load.cpu[side].items()}
                    for side in sides}  # fmt: skip
    lines = [
        "| process | " + " | ".join(sides) + " |",
        "|---|" + "--:|" * len(sides),
        *(
            f"| {name} | " + " | ".join(number(per_thousand[side][name]) for side in sides) + " |"
            for name in names
        ),
        "| **total** | "
        + " | ".join(f"**{number(sum(per_thousand[side].values()))}**" for side in sides)
        + " |",
    ]
    return "\n".join(lines)


async def run(env: BenchEnv, report: Report) -> None:
    load = await load_one(env)
    target = ratio_at_least(0.9)
    report.rows.append(
        Row(
            "1 throughput",
            f"Temporal's share: the raw workflow plus the platform's Temporal calls, no API "
            f"or table, N={load.jobs}",
            "jobs/s",
            load.shaped_rate,
            load.raw_rate,
            "raw SDK",
        )
    )
    report.rows.append(
        Row(
            "1 throughput",
            f"the same, submitted over HTTP to a bare FastAPI relay (no token, no table), "
            f"{CLIENTS} clients, N={load.jobs}",
            "jobs/s",
            load.hop_rate,
            load.raw_rate,
            "raw SDK",
        )
    )
    report.rows += [
        Row(
            "1 throughput",
            f"probe items=1, N={load.jobs} in {load.rounds} rounds, {CLIENTS} clients, {backend}",
            "jobs/s",
            rate,
            load.raw_rate,
            "raw SDK",
            target,
        )
        for backend, rate in load.platform_rates.items()
    ]
    report.sections["Throughput: CPU seconds per 1,000 jobs, by process and side"] = (
        "Measured from /proc during each side's rounds (all rounds summed); columns are the "
        "side that was running.\n\n" + cpu_section(load)
    )


METRICS_ROUNDS = 16
SETTLE_SECONDS = 2.0
"""Between two sides of the metrics benchmark: the dev server's tail of the previous
side's jobs (their closes, visibility) would otherwise slow whichever side comes second."""
PROCESSES = ("API", "worker")
WORKER_PORTS = ("PASTOOLS_WORKER_METRICS_PORT", "PASTOOLS_WORKER_SDK_METRICS_PORT")


async def scrape(stack: Stack) -> None:
    """What Prometheus does, more often: the API's `/metrics` and the worker's two ports."""
    async with stack.async_client() as http:
        (await http.get("/metrics")).raise_for_status()
        for name in WORKER_PORTS:
            (await http.get(f"http://127.0.0.1:{stack.env[name]}/metrics")).raise_for_status()


async def metered_seconds(stack: Stack, jobs: int, scraped: bool) -> float:
    """`platform_seconds`, with one scrape of every metrics endpoint meanwhile if `scraped`."""
    if not scraped:
        return await platform_seconds(stack, jobs)
    seconds, _ = await asyncio.gather(platform_seconds(stack, jobs), scrape(stack))
    return seconds


async def run_metrics(env: BenchEnv, report: Report) -> None:
    """Throughput with metrics on against off, in the same run: the same load, on two
    stacks alike but for `PASTOOLS_METRICS_ENABLED`, in rounds whose order alternates; each
    round's pair gives a ratio, and the median of those is the figure least moved by the
    machine's other load."""
    rounds = env.pick(2, METRICS_ROUNDS)
    jobs = env.pick(20, 2000)
    sides = {"on": await env.metered_platform(True), "off": await env.metered_platform(False)}
    shared = {
        "dev server": (await env.temporal()).process.pid,
        "PostgreSQL server": (await env.postgres()).pid,
    }
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    spent = {side: dict.fromkeys([*PROCESSES, *shared, cpu.CLIENTS], 0.0) for side in sides}
    for index in range(rounds):
        for side in rotated(list(sides), index):
            stack = sides[side]
            assert stack.api is not None and stack.worker is not None
            pids = shared | dict(zip(PROCESSES, (stack.api.pid, stack.worker.pid), strict=True))
            await asyncio.sleep(env.pick(0.0, SETTLE_SECONDS))
            before = cpu.snapshot(pids)
            seconds[side].append(await metered_seconds(stack, jobs // rounds, side == "on"))
            for name, total in cpu.snapshot(pids).items():
                spent[side][name] += total - before[name]
    rate = {side: jobs / sum(times) for side, times in seconds.items()}
    per_thousand = {
        side: {name: total * 1000 / jobs for name, total in by_process.items()}
        for side, by_process in spent.items()
    }
    # The clients' CPU is the load's and Prometheus's, not what the platform spends.
    services = {
        side: sum(spent for name, spent in by_process.items() if name != cpu.CLIENTS)
        for side, by_process in per_thousand.items()
    }
    where = f"N={jobs} a side in {rounds} rounds, {CLIENTS} clients, postgresql"
    report.rows += [
        Row(
            "7 metrics cost",
            f"probe items=1, metrics on (exporters served and scraped) vs off, {where}",
            "jobs/s",
            rate["on"],
            rate["off"],
            "metrics off",
            ratio_at_least(0.98),
        ),
        Row(
            "7 metrics cost",
            f"CPU seconds per 1,000 jobs, the services (API, worker, Temporal, PostgreSQL), "
            f"metrics on vs off, {where}",
            "s",
            services["on"],
            services["off"],
            "metrics off",
            ratio_at_most(1.02),
        ),
    ]
    ratios = [off / on for on, off in zip(seconds["on"], seconds["off"], strict=True)]
    lines = [
        "| process | metrics on | metrics off |",
        "|---|--:|--:|",
        *(
            f"| {name} | {number(per_thousand['on'][name])} | {number(per_thousand['off'][name])} |"
            for name in per_thousand["on"]
        ),
    ]
    report.sections["Metrics cost: throughput ratio of each round, CPU per 1,000 jobs"] = (
        f"Median ratio (metrics on / off) {statistics.median(ratios):.3f} of {len(ratios)} "
        f"rounds ({jobs // rounds} jobs a side each): "
        + ", ".join(f"{ratio:.3f}" for ratio in ratios)
        + ".\n\n"
        + "\n".join(lines)
    )
