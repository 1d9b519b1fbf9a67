"""The loop that keeps the table equal to Temporal when no workflow code can tell it.

Workflows record their own state (a local activity, and their work's progress); what
no workflow code sees is a run terminated or timed out. A frequent sweep asks
visibility for exactly those, closed since the last sweep (with a short overlap, since
visibility lags). Less often, in a task of its own, a slower pass sweeps every workflow
started or closed lately, with a wide overlap, looks closely at those the table
disagrees with (a record lost to a database outage, a workflow started from the CLI
while the database was down), checks the open rows against one list of the open
workflows, and starts the workflow of a row that a crash left without one.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.service import RPCError

from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import FailureInfo, JobEvent
from pastools_jobs.db.engine import Database
from pastools_jobs.db.models import Job
from pastools_jobs.domain import JobStatus
from pastools_jobs.job_catalog import SPEC_BY_WORKFLOW_NAME
from pastools_jobs.mirror.apply import apply_observed, end_unstarted, record_run
from pastools_jobs.mirror.listing import ListedRun, list_runs
from pastools_jobs.mirror.observe import observe_job
from pastools_jobs.repository import RowState, archived_runs, open_jobs, row_states
from pastools_jobs.temporal import JobLauncher

log = logging.getLogger(__name__)

SWEEP_OVERLAP = timedelta(seconds=2)
"""How far each sweep looks back before the previous one: visibility lags behind (on the
dev server, p99 about 0.6 s)."""
UNRECORDED_ENDS = "ExecutionStatus IN ('Terminated', 'TimedOut')"
"""The ends no workflow code runs for, so that only the mirror can record them."""
VISIBILITY_OVERLAP = timedelta(seconds=10)
"""How far the slower pass of the open-row task looks back, for lags the sweeps missed."""

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
        self._since = self._slow_since = utcnow() - STARTUP_LOOKBACK

    async def run(self) -> None:
        """Sweep, and check open rows, until cancelled; each in its own task, so that a
        long check (a backlog of open rows) never delays the sweep."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_repeat(self.sweep, self._interval, "mirror sweep"))
            tasks.create_task(
                _repeat(self.slow_pass, OPEN_ROW_CHECK_EVERY.total_seconds(), "open-row check")
            )

    async def sweep(self) -> None:
        """Runs terminated or timed out lately. Listing every workflow that started or
        closed instead cost the API a third of its CPU under load, each workflow being
        listed in every sweep of the overlap."""
        started = utcnow()
        stamp = _visibility_time(self._since - SWEEP_OVERLAP)
        await self._reconcile_listed(f"CloseTime >= '{stamp}' AND {UNRECORDED_ENDS}")
        self._since = started

    async def slow_pass(self) -> None:
        """Every workflow started or closed lately, with a wide overlap, then the open rows;
        every few seconds."""
        started = utcnow()
        stamp = _visibility_time(self._slow_since - VISIBILITY_OVERLAP)
        await self._reconcile_listed(f"(StartTime >= '{stamp}' OR CloseTime >= '{stamp}')")
        self._slow_since = started
        await self.check_open_rows()

    async def _reconcile_listed(self, condition: str) -> None:
        """Refresh the rows that disagree with the platform's workflows matching `condition`."""
        query = f"TaskQueue = '{self._launcher.task_queue}' AND {condition}"
        runs = [
            run
            async for run in list_runs(self._client, query)
            if run.workflow_type in SPEC_BY_WORKFLOW_NAME
        ]
        if not runs:
            return
        rows, archived = await asyncio.to_thread(self._load, [run.job_id for run in runs])
        for run in runs:
            if _disagrees(run, rows.get(run.job_id), archived):
                await self._refresh(run.job_id, run.run_id)

    async def check_open_rows(self) -> None:
        """Open rows not touched lately against one visibility list of the open workflows;
        only those it contradicts are described (a closed run, another run, a started
        workflow whose row says queued, or no workflow at all: a crash's orphan)."""
        rows = await asyncio.to_thread(self._open_rows, utcnow() - OPEN_ROW_CHECK_EVERY)
        if not rows:
            return
        running = {
            run.job_id: run
            async for run in list_runs(
                self._client,
                f"TaskQueue = '{self._launcher.task_queue}' AND ExecutionStatus = 'Running'",
            )
        }
        for job in rows:
            if _agrees_open(job, running.get(job.id)):
                continue
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
        if row is not None and row.run_id not in (None, run_id) and not row.status.is_terminal:
            # The row's run closed unseen before this newer one began: record its end first.
            assert row.run_id is not None
            previous = await observe_job(self._client, job_id, row.run_id)
            if previous is not None:
                await asyncio.to_thread(self._apply, previous)
        await asyncio.to_thread(self._apply, event)

    async def _start_orphan(self, job: Job) -> None:
        await start_unstarted(self._db, self._launcher, job)

    def _load(self, ids: list[str]) -> tuple[dict[str, RowState], set[str]]:
        with self._db.transaction() as session:
            rows = row_states(session, ids)
            archived = archived_runs(session, ids)
        return rows, {run for runs in archived.values() for run in runs}

    def _open_rows(self, updated_before: datetime) -> list[Job]:
        with self._db.transaction() as session:
            return open_jobs(session, updated_before)

    def _apply(self, event: JobEvent) -> None:
        with self._db.transaction() as session:
            apply_observed(session, event)


_CANCELLED_BEFORE_START = FailureInfo(
    type="Cancelled", message="The job was cancelled before its workflow started."
)


async def start_unstarted(db: Database, launcher: JobLauncher, job: Job) -> bool:
    """Start the workflow of a row a crash left without one; whether the row now has a run.

    Another replica may be starting it at the same moment: starting an id that has started
    is success. A row whose cancel was requested is never started: it ends cancelled (an
    earlier version stamped the request before sending it, and a crash could come between)."""
    if job.cancel_requested_at is not None:
        return await db.run(
            lambda session: end_unstarted(
                session.connection(), job.id, JobStatus.CANCELLED, _CANCELLED_BEFORE_START
            )
        )
    log.info("starting job %s, whose workflow was never started", job.id)
    run_id = await launcher.ensure_started(job)
    if run_id is None:
        return True
    return await db.run(lambda session: record_run(session, job.id, run_id))


def _visibility_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _repeat(work: Callable[[], Awaitable[None]], seconds: float, name: str) -> None:
    """`work` every `seconds`; an unreachable Temporal or database only delays it."""
    while True:
        try:
            await work()
        except (RPCError, SQLAlchemyError, OSError) as error:
            log.warning("%s failed, retrying: %s", name, error)
        except Exception:
            # Anything else (a client that cannot connect yet, a bug) must not stop the
            # mirror for good while the API goes on serving a table that no longer moves.
            log.exception("%s failed unexpectedly, retrying", name)
        await asyncio.sleep(seconds)


def _agrees_open(job: Job, run: ListedRun | None) -> bool:
    """Whether an open row matches the open workflow visibility lists under its id.

    A row without a run id is the run the API started, queued until its work begins;
    it takes the run id from the work's first progress report, or from the workflow's
    record of how it ended.
    """
    return run is not None and job.run_id in (None, run.run_id)


def _disagrees(run: ListedRun, row: RowState | None, archived: Iterable[str]) -> bool:
    if row is None:
        # A closed job without a row was cleaned up; an open one was started from outside.
        return not run.closed
    if row.run_id is None:
        # The run the API started, whose work has not reported yet: it will, or its
        # workflow will record how it ended, unless it closed first.
        return run.closed and run.run_id not in archived
    if run.run_id != row.run_id:
        return run.run_id not in archived
    # An open run's row follows its work's reports; a closed run's row must say how it closed.
    return run.closed and run.closed_as != row.status
