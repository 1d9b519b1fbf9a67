"""The loop that keeps the table equal to Temporal when no workflow code can tell it.

Workflows record their own state (a local activity, and their work's progress); what
no workflow code sees is a run terminated or timed out. A frequent sweep asks
visibility for exactly those, closed since the last sweep (with a short overlap, since
visibility lags). Less often, in a task of its own, a slower pass sweeps every workflow
started or closed lately, with a wide overlap, and checks the open rows against one list
of the open workflows. What the table and a listing disagree on is confirmed with
`describe`, judged and repaired exactly as `pastools doctor --fix` does (`judge.classify`,
`repair.Repairs`), only without the doctor's grace and leaving orphan rows to it.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.service import RPCError

from pastools_jobs.clock import utcnow
from pastools_jobs.db.engine import Database
from pastools_jobs.domain import TemporalUnavailable
from pastools_jobs.job_catalog import SPEC_BY_WORKFLOW_NAME
from pastools_jobs.metrics import DISAGREEMENTS, MIRROR_LAST_SWEEP
from pastools_jobs.mirror.judge import Difference, Grace, ObservedRun, Run, awaits_close, classify
from pastools_jobs.mirror.listing import list_runs
from pastools_jobs.mirror.observe import observe_job
from pastools_jobs.mirror.repair import Repairs
from pastools_jobs.repository import RowState, archived_runs, row_states
from pastools_jobs.temporal import JobLauncher, is_unavailable
from pastools_jobs.webhooks.dispatch import DeliveryDispatcher

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

GRACE = Grace(settle=timedelta(0), rows_kept_for=timedelta(0))
"""Repairs are idempotent and confirmed with `describe`, so a row written a moment ago is
repaired at once (a terminate must show within a sweep). The API's cleanup may delete a
finished job at any age, and a closed run without a row cannot tell that from a lost
row: the reconciler creates rows for open runs only, the doctor reports the others."""
LEFT_TO_THE_DOCTOR = frozenset({Difference.ORPHAN_ROW})
"""Failing every open row whose workflow Temporal does not have is an operator's call
(`pastools doctor --fix`): a namespace reset, or a mirror pointed at the wrong one, would
otherwise fail every open job at once."""


class Reconciler:
    def __init__(
        self,
        db: Database,
        launcher: JobLauncher,
        interval_seconds: float,
        *,
        may_work: Callable[[], bool] = lambda: True,
        metered: bool = True,
        webhooks: DeliveryDispatcher | None = None,
    ) -> None:
        """`may_work` is asked before every pass and every repair: a mirror whose lease
        ran out (`mirror/leadership.py`) stops at once, even before it is cancelled.
        `webhooks`, when given, starts the webhook deliveries jobs' ends wrote, at the
        sweep's pace."""
        self._may_work = may_work
        self._webhooks = webhooks
        self._db = db
        self._launcher = launcher
        self._client: Client = launcher.client
        self._repairs = Repairs(db, launcher, metered=metered)
        self._metered = metered
        self._interval = interval_seconds
        self._since = self._slow_since = utcnow() - STARTUP_LOOKBACK

    async def run(self) -> None:
        """Sweep, and check open rows, until cancelled; each in its own task, so that a
        long check (a backlog of open rows) never delays the sweep."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._repeat(self.sweep, self._interval, "mirror sweep"))
            tasks.create_task(
                self._repeat(self.slow_pass, OPEN_ROW_CHECK_EVERY.total_seconds(), "open-row check")
            )
            if self._webhooks is not None:
                # A task of its own: a slow Temporal start never delays the sweep.
                tasks.create_task(
                    self._repeat(self.dispatch_webhooks, self._interval, "webhook dispatch")
                )

    async def _repeat(self, work: Callable[[], Awaitable[None]], seconds: float, name: str) -> None:
        """`work` every `seconds` while the mirror may work; an unreachable Temporal or
        database only delays it."""
        while True:
            if self._may_work():
                try:
                    await work()
                except (RPCError, SQLAlchemyError, OSError) as error:
                    log.warning("%s failed, retrying: %s", name, error)
                except Exception:
                    # Anything else (a client that cannot connect yet, a bug) must not stop
                    # the mirror for good while the API goes on serving a table that no
                    # longer moves.
                    log.exception("%s failed unexpectedly, retrying", name)
            await asyncio.sleep(seconds)

    async def sweep(self) -> None:
        """Runs terminated or timed out lately. Listing every workflow that started or
        closed instead cost the API a third of its CPU under load, each workflow being
        listed in every sweep of the overlap."""
        started = utcnow()
        stamp = _visibility_time(self._since - SWEEP_OVERLAP)
        await self._reconcile_listed(f"CloseTime >= '{stamp}' AND {UNRECORDED_ENDS}")
        self._since = started
        if self._metered:
            MIRROR_LAST_SWEEP.set_to_current_time()

    async def dispatch_webhooks(self) -> None:
        """Start the workflows of the webhook deliveries written since the last pass."""
        if self._webhooks is not None:
            await self._webhooks.dispatch(self._may_work)

    async def slow_pass(self) -> None:
        """Every workflow started or closed lately, with a wide overlap, then the open rows;
        every few seconds."""
        started = utcnow()
        stamp = _visibility_time(self._slow_since - VISIBILITY_OVERLAP)
        await self._reconcile_listed(f"(StartTime >= '{stamp}' OR CloseTime >= '{stamp}')")
        self._slow_since = started
        await self.check_open_rows()

    async def _reconcile_listed(self, condition: str) -> None:
        """Repair the rows that disagree with the platform's workflows matching `condition`."""
        query = f"TaskQueue = '{self._launcher.task_queue}' AND {condition}"
        runs = [
            run
            async for run in list_runs(self._client, query)
            if run.workflow_type in SPEC_BY_WORKFLOW_NAME
        ]
        if not runs:
            return
        rows, archived = await asyncio.to_thread(self._load, {run.job_id for run in runs})
        now = utcnow()
        suspects = {
            run.job_id
            for run in runs
            if _worth_a_look(rows.get(run.job_id), run, archived.get(run.job_id, set()), now)
        }
        for job_id in sorted(suspects):
            if not self._may_work():
                return
            await self._repair_confirmed(job_id, rows.get(job_id), archived.get(job_id, set()))

    async def check_open_rows(self) -> None:
        """Open rows not touched lately against one visibility list of the open workflows.
        That list says nothing of closed runs, so a row it lacks is a suspect whatever the
        judge makes of it (a closed run, or no workflow at all: a crash's orphan); so is a
        row the judge finds at odds with its open run (another run, say)."""
        open_rows = await asyncio.to_thread(self._open_rows, utcnow() - OPEN_ROW_CHECK_EVERY)
        if not open_rows:
            return
        running = {
            run.job_id: run
            async for run in list_runs(
                self._client,
                f"TaskQueue = '{self._launcher.task_queue}' AND ExecutionStatus = 'Running'",
            )
        }
        now = utcnow()
        suspects = [
            job_id
            for job_id, row in sorted(open_rows.items())
            if (run := running.get(job_id)) is None or _worth_a_look(row, run, (), now)
        ]
        if not suspects:
            return
        rows, archived = await asyncio.to_thread(self._load, suspects)
        for job_id in suspects:
            if not self._may_work():
                return
            await self._repair_confirmed(job_id, rows.get(job_id), archived.get(job_id, set()))

    async def _repair_confirmed(
        self, job_id: str, row: RowState | None, archived: set[str]
    ) -> None:
        """Judge the row against what `describe` says of the job, and repair the difference."""
        event = await observe_job(self._client, job_id)
        run = ObservedRun.of(event)
        difference = classify(row, run, archived, utcnow(), GRACE)
        if difference is None or not _repaired_here(difference, row, run):
            return
        outcome = "failed"
        try:
            repaired = await self._repairs.repair(difference, row, event)
            outcome = "repaired" if repaired else "unchanged"
        except (TemporalUnavailable, RPCError, SQLAlchemyError, OSError) as error:
            if not _refused(error):
                raise  # Temporal or the database is away: the whole pass waits for them
            log.error("could not repair %s of job %s: %s", difference, job_id, error)
        except Exception:
            # One job's failure must not keep every job after it unrepaired, pass after pass.
            log.exception("could not repair %s of job %s", difference, job_id)
        finally:
            if self._metered:
                DISAGREEMENTS.labels(difference, outcome).inc()

    def _load(self, ids: Collection[str]) -> tuple[dict[str, RowState], dict[str, set[str]]]:
        with self._db.reading() as connection:
            return row_states(connection, ids), archived_runs(connection, ids)

    def _open_rows(self, updated_before: datetime) -> dict[str, RowState]:
        with self._db.reading() as connection:
            return row_states(connection, open_before=updated_before)


def _worth_a_look(row: RowState | None, run: Run, archived: Collection[str], now: datetime) -> bool:
    """Whether a listed run disagrees with the row in a way the reconciler repairs, so that
    it is worth a `describe` (visibility lags: the listing only points at suspects)."""
    difference = classify(row, run, archived, now, GRACE)
    return difference is not None and _repaired_here(difference, row, run)


def _refused(error: Exception) -> bool:
    """Temporal answered and said no (a start refused for good): about this job alone."""
    return isinstance(error, RPCError) and not is_unavailable(error)


def _repaired_here(difference: Difference, row: RowState | None, run: Run | None) -> bool:
    return difference not in LEFT_TO_THE_DOCTOR and not awaits_close(row, run)


def _visibility_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
