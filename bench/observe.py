"""Watching jobs from three places at once, with the time each change was first seen.

The lag benchmarks compare when the same change (a close, a new progress value)
appears in Temporal (`describe`), in Temporal's visibility (list queries) and in the
jobs table. Each poller keeps, per workflow id, the timeline of distinct
(status, done) states it has seen, stamped with wall-clock time so that they can be
compared with the times Temporal itself records (close time, event times).
"""

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from pastools_jobs.contracts import JOB_PROGRESS
from pastools_jobs.db.models import Job
from pastools_jobs.domain import TERMINAL_STATUSES

TABLE_INTERVAL = 0.01
"""The issue's ~10 ms: the table is a local database, polling it is cheap."""

VISIBILITY_INTERVAL = 0.02
"""The dev server serves at most 100 visibility requests/s, the API's mirror included."""

DESCRIBE_INTERVAL = 0.05


@dataclass(frozen=True)
class Observation:
    at: float
    status: str
    done: int


Predicate = Callable[[Observation], bool]


class Timelines:
    """Per id, the distinct states seen and when each was first seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, list[Observation]] = {}

    def record(self, job_id: str, status: str, done: int, at: float) -> None:
        with self._lock:
            timeline = self._seen.setdefault(job_id, [])
            if not timeline or (timeline[-1].status, timeline[-1].done) != (status, done):
                timeline.append(Observation(at, status, done))

    def timeline(self, job_id: str) -> list[Observation]:
        with self._lock:
            return list(self._seen.get(job_id, []))

    def first(self, job_id: str, predicate: Predicate) -> float | None:
        return next((seen.at for seen in self.timeline(job_id) if predicate(seen)), None)

    async def wait(self, job_id: str, predicate: Predicate, timeout: float = 60.0) -> float:
        """When `predicate` first held for `job_id`, waiting for it if need be."""
        async with asyncio.timeout(timeout):
            while (at := self.first(job_id, predicate)) is None:
                await asyncio.sleep(0.005)
        return at


def is_terminal(seen: Observation) -> bool:
    return seen.status in TERMINAL_STATUSES


class TablePoller(Timelines):
    """Polls the jobs table directly (SQLAlchemy), in a thread so that the benchmark's
    event loop cannot delay an observation; a row stops being polled once terminal."""

    def __init__(self, database_url: str, interval: float = TABLE_INTERVAL) -> None:
        super().__init__()
        self._engine = create_engine(database_url)
        self._interval = interval
        self._watched: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="table-poller", daemon=True)

    def watch(self, job_ids: Iterable[str]) -> None:
        with self._lock:
            self._watched.update(job_ids)

    def _poll(self) -> None:
        query = select(Job.id, Job.status, Job.progress_done)
        with self._engine.connect() as connection:
            while not self._stop.wait(self._interval):
                with self._lock:
                    ids = list(self._watched)
                if not ids:
                    continue
                rows = connection.execute(query.where(Job.id.in_(ids))).all()
                connection.rollback()  # a fresh snapshot next time
                now = time.time()
                for job_id, status, done in rows:
                    self.record(job_id, status, done, now)
                    if status in TERMINAL_STATUSES:
                        with self._lock:
                            self._watched.discard(job_id)

    def __enter__(self) -> "TablePoller":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._engine.dispose()


class AsyncPoller(Timelines):
    """A poller that runs as a task of the benchmark's event loop."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(RPCError):
                await self.poll_once()
            await asyncio.sleep(self._interval)

    async def __aenter__(self) -> "AsyncPoller":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def status_name(status: WorkflowExecutionStatus | None) -> str:
    """Temporal's status in the table's words where they agree (completed, running...)."""
    if status is WorkflowExecutionStatus.CANCELED:
        return "cancelled"
    return status.name.lower() if status else "unknown"


class VisibilityPoller(AsyncPoller):
    """Lists a query's workflows: status and the JobProgress search attribute."""

    def __init__(self, client: Client, query: str, interval: float = VISIBILITY_INTERVAL) -> None:
        super().__init__(interval)
        self._client = client
        self._query = query

    async def poll_once(self) -> None:
        executions = [execution async for execution in self._client.list_workflows(self._query)]
        now = time.time()
        for execution in executions:
            progress = execution.typed_search_attributes.get(JOB_PROGRESS) or 0
            self.record(execution.id, status_name(execution.status), progress, now)


class DescribePoller(AsyncPoller):
    """Describes each watched workflow: status and its pending activity's heartbeat `done`."""

    def __init__(self, client: Client, interval: float = DESCRIBE_INTERVAL) -> None:
        super().__init__(interval)
        self._client = client
        self.watched: set[str] = set()

    async def _describe(self, workflow_id: str) -> None:
        description = await self._client.get_workflow_handle(workflow_id).describe()
        now = time.time()
        done = 0
        for pending in description.raw_description.pending_activities:
            if pending.heartbeat_details.payloads:
                details: list[Any] = await self._client.data_converter.decode(
                    pending.heartbeat_details.payloads
                )
                done = int(details[0]["done"])
        self.record(workflow_id, status_name(description.status), done, now)

    async def poll_once(self) -> None:
        await asyncio.gather(*(self._describe(workflow_id) for workflow_id in self.watched))
