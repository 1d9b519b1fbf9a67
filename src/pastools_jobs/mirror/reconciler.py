"""The loop that keeps the table equal to Temporal when no workflow code can tell it.

Each sweep asks visibility which of the platform's workflows started or closed since
the last sweep (with an overlap, since visibility lags) and looks closely only at
those the table disagrees with. Less often it checks every open row against
`describe`, which catches whatever visibility missed, and starts the workflow of a
row that a crash left without one.
"""

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError

from pastools_jobs.contracts import JobEvent
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job, JobAttempt
from pastools_jobs.domain import JobStatus
from pastools_jobs.job_types import BY_WORKFLOW_NAME
from pastools_jobs.mirror.apply import apply_event, utcnow
from pastools_jobs.mirror.observe import observe_job
from pastools_jobs.repository import open_jobs
from pastools_jobs.temporal import JobLauncher

log = logging.getLogger(__name__)

VISIBILITY_OVERLAP = timedelta(seconds=10)
"""How far each sweep looks back before the previous one: visibility lags behind."""

STARTUP_LOOKBACK = timedelta(minutes=10)
OPEN_ROW_CHECK_EVERY = timedelta(seconds=5)
ORPHAN_GRACE = timedelta(seconds=30)
"""A queued row with no workflow for this long lost it to a crash; the mirror starts it."""


class Reconciler:
    def __init__(self, db: Database, launcher: JobLauncher, interval_seconds: float) -> None:
        self._db = db
        self._launcher = launcher
        self._client: Client = launcher.client
        self._interval = interval_seconds
        self._since = utcnow() - STARTUP_LOOKBACK
        self._next_open_check = utcnow()

    async def run(self) -> None:
        """Sweep until cancelled; an unreachable Temporal or database only delays it."""
        while True:
            try:
                await self.sweep()
            except (RPCError, SQLAlchemyError, OSError) as error:
                log.warning("mirror sweep failed, retrying: %s", error)
            await asyncio.sleep(self._interval)

    async def sweep(self) -> None:
        started = utcnow()
        await self._sweep_recent(self._since - VISIBILITY_OVERLAP)
        self._since = started
        if started >= self._next_open_check:
            await self._check_open_rows(started - OPEN_ROW_CHECK_EVERY)
            self._next_open_check = started + OPEN_ROW_CHECK_EVERY

    async def _sweep_recent(self, since: datetime) -> None:
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        query = (
            f"TaskQueue = '{self._launcher.task_queue}' "
            f"AND (StartTime >= '{stamp}' OR CloseTime >= '{stamp}')"
        )
        executions = [
            execution
            async for execution in self._client.list_workflows(query)
            if execution.workflow_type in BY_WORKFLOW_NAME
        ]
        if not executions:
            return
        rows, archived = await asyncio.to_thread(self._load, [e.id for e in executions])
        for execution in executions:
            if _disagrees(execution, rows.get(execution.id), archived):
                await self._refresh(execution.id, execution.run_id)

    async def _check_open_rows(self, updated_before: datetime) -> None:
        for job in await asyncio.to_thread(self._open_rows, updated_before):
            event = await observe_job(self._client, job.id)
            if event is not None:
                await asyncio.to_thread(self._apply, event)
            elif job.run_id is None and job.created_at < utcnow() - ORPHAN_GRACE:
                await self._start_orphan(job)

    async def _refresh(self, job_id: str, run_id: str) -> None:
        event = await observe_job(self._client, job_id, run_id)
        if event is None:
            return
        row = (await asyncio.to_thread(self._load, [job_id]))[0].get(job_id)
        if row is not None and row[0] not in (None, run_id) and not JobStatus(row[1]).is_terminal:
            # The row's run closed unseen before this newer one began: record its end first.
            assert row[0] is not None
            previous = await observe_job(self._client, job_id, row[0])
            if previous is not None:
                await asyncio.to_thread(self._apply, previous)
        await asyncio.to_thread(self._apply, event)

    async def _start_orphan(self, job: Job) -> None:
        log.info("starting job %s, whose workflow was never started", job.id)
        run_id = await self._launcher.start(job, rerun=job.attempt > 1)
        await asyncio.to_thread(self._set_run, job.id, run_id)

    def _load(self, ids: list[str]) -> tuple[dict[str, tuple[str | None, str]], set[str]]:
        with self._db.transaction() as session:
            rows = {
                job_id: (run_id, status)
                for job_id, run_id, status in session.execute(
                    select(Job.id, Job.run_id, Job.status).where(Job.id.in_(ids))
                )
            }
            archived = set(
                session.scalars(select(JobAttempt.run_id).where(JobAttempt.job_id.in_(ids)))
            )
        return rows, {run for run in archived if run}

    def _open_rows(self, updated_before: datetime) -> list[Job]:
        with self._db.transaction() as session:
            return open_jobs(session, updated_before)

    def _apply(self, event: JobEvent) -> None:
        with self._db.transaction() as session:
            apply_event(session, event)

    def _set_run(self, job_id: str, run_id: str) -> None:
        with self._db.transaction() as session:
            job = session.get(Job, job_id)
            if job is not None and job.run_id is None:
                job.run_id = run_id


def _disagrees(
    execution: WorkflowExecution, row: tuple[str | None, str] | None, archived: Iterable[str]
) -> bool:
    closed = execution.status not in (None, WorkflowExecutionStatus.RUNNING)
    if row is None:
        # A closed job without a row was cleaned up; an open one was started from outside.
        return not closed
    run_id, status = row
    if execution.run_id != run_id:
        return execution.run_id not in archived
    return closed and not JobStatus(status).is_terminal
