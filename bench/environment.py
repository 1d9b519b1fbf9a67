"""The services a benchmark run needs, started once, on demand, and always stopped.

One Temporal dev server (started by the platform's own `start_dev_server`, so with its
WAL pragmas and search attributes) serves both sides of every comparison: the
platform's stacks (`pastools api` + `pastools worker` processes, from the test
support code) and the raw worker (`bench.raw_worker`), each on its own task queue.
"""

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from temporalio.client import Client

from bench.core import Size
from bench.raw import RawWork, RawWorkflow
from pastools_jobs.process import child_process_options, stop_process
from tests.support.services import (
    PostgresCluster,
    Stack,
    TemporalServer,
    free_port,
    start_postgres,
    start_stack,
    start_temporal,
)
from tests.support.waiting import wait_for

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
WARM_UP_JOBS = 8
"""Jobs run on each side before measuring: imports, connection pools, worker caches."""

BACKENDS = ("postgresql", "sqlite")


@dataclass
class RawWorker:
    """The baseline's worker process and the task queue it polls."""

    process: subprocess.Popen[bytes]
    task_queue: str


@dataclass
class Relay:
    """The bare HTTP relay (`bench.relay`) in front of the raw worker's task queue."""

    process: subprocess.Popen[bytes]
    url: str


@dataclass
class BenchEnv:
    """Lazily started services shared by the benchmarks of one run."""

    size: Size
    workdir: Path
    _cleanups: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _temporal: TemporalServer | None = None
    _postgres: PostgresCluster | None = None
    _client: Client | None = None
    _stacks: dict[str, Stack] = field(default_factory=dict)
    _raw: RawWorker | None = None
    _relay: Relay | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    """Results one benchmark leaves for another (the memory benchmark reuses load 1)."""

    @property
    def full(self) -> bool:
        return self.size is Size.FULL

    def pick(self, small: T, full: T) -> T:
        return full if self.full else small

    async def temporal(self) -> TemporalServer:
        if self._temporal is None:
            server = await asyncio.to_thread(start_temporal, self.workdir / "temporal")
            self._cleanups.callback(server.stop)
            self._temporal = server
        return self._temporal

    async def client(self) -> Client:
        """The benchmark's own Temporal client: the raw side's, and the observer's."""
        if self._client is None:
            self._client = await Client.connect((await self.temporal()).address)
        return self._client

    async def postgres(self) -> PostgresCluster:
        if self._postgres is None:
            # Not under workdir: as root the cluster runs as `postgres`, who must enter it.
            base = Path(tempfile.mkdtemp(prefix="pastools-bench-pg-"))
            self._cleanups.callback(shutil.rmtree, base, ignore_errors=True)
            cluster = await asyncio.to_thread(start_postgres, base)
            self._cleanups.callback(cluster.stop)
            self._postgres = cluster
        return self._postgres

    async def database_url(self, backend: str, name: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.workdir / f'{name}.sqlite3'}"
        cluster = await self.postgres()
        return await asyncio.to_thread(cluster.create_database, name)

    async def platform(self, backend: str = "postgresql") -> Stack:
        """A warmed-up stack (API + worker) on `backend`; PostgreSQL is production's."""
        return await self._platform(backend, backend)

    async def metered_platform(self, enabled: bool) -> Stack:
        """A warmed-up PostgreSQL stack with metrics on, every exporter of them served (the
        worker's port, the Temporal SDK's), or with metrics off."""
        extra_env = {"PASTOOLS_METRICS_ENABLED": str(enabled).lower()}
        if enabled:
            extra_env |= {
                "PASTOOLS_WORKER_METRICS_PORT": str(free_port()),
                "PASTOOLS_WORKER_SDK_METRICS_PORT": str(free_port()),
            }
        name = "metrics_on" if enabled else "metrics_off"
        return await self._platform(name, "postgresql", extra_env)

    async def job_log_platform(self, capture: bool) -> Stack:
        """The PostgreSQL platform, or one alike but capturing no job logs."""
        if capture:
            return await self.platform()
        return await self._platform("job_logs_off", "postgresql", {"PASTOOLS_JOB_LOG_LINES": "0"})

    async def _platform(
        self, name: str, backend: str, extra_env: dict[str, str] | None = None
    ) -> Stack:
        if name not in self._stacks:
            temporal = await self.temporal()
            url = await self.database_url(backend, f"bench_{name}")
            stack = await asyncio.to_thread(
                start_stack, name, self.workdir / name, temporal, url, extra_env=extra_env
            )
            self._cleanups.callback(stack.stop)
            await warm_up_platform(stack)
            self._stacks[name] = stack
        return self._stacks[name]

    async def start_api_only(self, name: str, database_url: str) -> Stack:
        """An API with neither mirror nor worker, over a table no workflow corresponds to."""
        temporal = await self.temporal()
        stack = await asyncio.to_thread(
            start_stack,
            name,
            self.workdir / name,
            temporal,
            database_url,
            worker=False,
            extra_env={"PASTOOLS_MIRROR_ENABLED": "false"},
        )
        self._cleanups.callback(stack.stop)
        return stack

    async def raw(self) -> RawWorker:
        """The baseline's worker, warmed up like the platform's."""
        if self._raw is None:
            temporal = await self.temporal()
            queue = "bench-raw"
            process = self._spawn(
                "bench.raw_worker", "--address", temporal.address, "--task-queue", queue
            )
            self._raw = RawWorker(process, queue)
            await warm_up_raw(await self.client(), queue)
        return self._raw

    async def relay(self) -> Relay:
        """The bare HTTP relay to the raw worker, started once and ready to answer."""
        if self._relay is None:
            temporal = await self.temporal()
            raw = await self.raw()
            port = free_port()
            process = self._spawn(
                "bench.relay", "--address", temporal.address, "--task-queue", raw.task_queue,
                "--port", str(port),
            )  # fmt: skip
            relay = Relay(process, f"http://127.0.0.1:{port}")
            await asyncio.to_thread(
                wait_for, lambda: relay_ready(relay), timeout=60, what="the HTTP relay"
            )
            await warm_up_relay(relay, await self.client())
            self._relay = relay
        return self._relay

    def _spawn(self, module: str, *args: str) -> subprocess.Popen[bytes]:
        """`python -m module args`, logging to `<module>.log` in the workdir, stopped at close."""
        with (self.workdir / f"{module}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                **child_process_options(),
            )
        self._cleanups.callback(stop_process, process)
        return process

    def on_close(self, callback: Callable[[], object]) -> None:
        self._cleanups.callback(callback)

    def close(self) -> None:
        """Stop everything in reverse order of start: stacks, workers, then the servers."""
        self._cleanups.close()


def relay_ready(relay: Relay) -> bool:
    """Whether the relay answers; a relay that exited will not, so fail at once."""
    if relay.process.poll() is not None:
        raise RuntimeError("the HTTP relay exited; see bench.relay.log in the bench workdir")
    try:
        return httpx.get(f"{relay.url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def warm_up_platform(stack: Stack) -> None:
    """Wait until the worker runs jobs: a benchmark must not time the worker's start."""
    project = f"warm-{uuid.uuid4().hex[:8]}"
    async with stack.async_client() as http:
        for _ in range(WARM_UP_JOBS):
            body = {"type": "probe", "project_id": project, "params": {"items": 1}}
            (await http.post("/api/jobs", json=body)).raise_for_status()
        await wait_completed(http, project, WARM_UP_JOBS, timeout=120)


async def wait_completed(
    http: httpx.AsyncClient, project: str, count: int, *, timeout: float, interval: float = 0.25
) -> None:
    """Poll a project's stats until `count` jobs are completed; fail on a failed one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        stats = (await http.get(f"/api/jobs/projects/{project}/stats")).json()["by_status"]
        if stats["failed"] or stats["cancelled"]:
            raise RuntimeError(f"jobs of {project} did not complete: {stats}")
        if stats["completed"] >= count:
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"{count} jobs of {project} not completed after {timeout}s")


async def warm_up_raw(client: Client, task_queue: str) -> None:
    handles = [
        await client.start_workflow(
            RawWorkflow.run, RawWork(), id=f"warm-{uuid.uuid4().hex}", task_queue=task_queue
        )
        for _ in range(WARM_UP_JOBS)
    ]
    async with asyncio.timeout(120):
        await asyncio.gather(*(handle.result() for handle in handles))


async def warm_up_relay(relay: Relay, client: Client) -> None:
    """Run a few workflows through the relay, so that its imports and its Temporal
    connection are not part of the first round's time."""
    async with httpx.AsyncClient(base_url=relay.url, timeout=60) as http:
        workflow_ids = []
        for _ in range(WARM_UP_JOBS):
            response = await http.post("/workflows", json={"project_id": "warm"})
            response.raise_for_status()
            workflow_ids.append(response.json()["id"])
    async with asyncio.timeout(120):
        await asyncio.gather(*(client.get_workflow_handle(w).result() for w in workflow_ids))
