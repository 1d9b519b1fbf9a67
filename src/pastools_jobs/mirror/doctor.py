"""The consistency check an operator runs: the jobs table against Temporal, every difference.

The reconciler repairs what changed lately; the doctor looks at everything the task
queue still has in Temporal's visibility (open workflows, closed ones within retention)
and every open row, so that whatever a crash, an outage or a hand edit left behind is
named. Visibility only points at suspects: each is confirmed with `describe` (the
truth for one workflow) before it is reported, since visibility lags. Repairs go
through the mirror's own idempotent functions.
"""

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import FailureInfo, JobEvent
from pastools_jobs.counts import CountDrift, count_drift, rebuild_counts
from pastools_jobs.db.engine import Database
from pastools_jobs.domain import JobError, JobStatus
from pastools_jobs.job_catalog import SPEC_BY_WORKFLOW_NAME
from pastools_jobs.mirror.apply import apply_event, apply_observed
from pastools_jobs.mirror.listing import closed_status
from pastools_jobs.mirror.observe import observe_job
from pastools_jobs.mirror.reconciler import ORPHAN_GRACE, start_unstarted
from pastools_jobs.repository import RowState, archived_runs, find_job, row_states
from pastools_jobs.temporal import JobLauncher

log = logging.getLogger(__name__)

SETTLE_GRACE = timedelta(seconds=10)
"""A row written this recently may only be catching up with its workflow: not judged yet."""

_OPEN_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class DifferenceKind(StrEnum):
    MISSING_ROW = "missing-row"
    WRONG_STATUS = "wrong-status"
    ORPHAN_ROW = "orphan-row"
    NOT_STARTED = "not-started"
    RUN_MISMATCH = "run-mismatch"
    COUNT_DRIFT = "count-drift"


@dataclass
class Difference:
    kind: DifferenceKind
    job_id: str | None
    """None for a difference of a project's statistics rather than of one job."""
    detail: str
    event: JobEvent | None = field(default=None, repr=False)
    repaired: bool = False
    project_id: str | None = None

    @property
    def subject(self) -> str:
        return self.job_id or f"project {self.project_id}"


@dataclass
class Report:
    rows: int
    workflows: int
    differences: list[Difference]

    @property
    def consistent(self) -> bool:
        return not self.differences

    @property
    def unrepaired(self) -> list[Difference]:
        return [difference for difference in self.differences if not difference.repaired]


class Doctor:
    """Finds the differences between the jobs table and Temporal, and repairs them."""

    def __init__(self, db: Database, launcher: JobLauncher, keep_closed_for: timedelta) -> None:
        """`keep_closed_for`: closed workflows older than this lost their row to cleanup."""
        self._db = db
        self._launcher = launcher
        self._client: Client = launcher.client
        self._keep_closed_for = keep_closed_for

    async def examine(self) -> Report:
        latest = await self._latest_runs()
        rows, archived = await asyncio.to_thread(self._load)
        differences: list[Difference] = []
        for job_id in sorted(latest.keys() | rows.keys()):
            row, execution = rows.get(job_id), latest.get(job_id)
            if _suspect(row, execution, archived.get(job_id, set())):
                found = await self._confirm(job_id, row, archived.get(job_id, set()))
                if found is not None:
                    differences.append(found)
        differences += [_drifted(drift) for drift in await self._db.run(count_drift)]
        return Report(rows=len(rows), workflows=len(latest), differences=differences)

    async def repair(self, report: Report) -> None:
        """Repair each difference; one that cannot be repaired now stays marked unrepaired."""
        for difference in report.differences:
            try:
                difference.repaired = await self._repair(difference)
            except (RPCError, JobError, WorkflowAlreadyStartedError) as error:
                log.warning("could not repair %s: %s", difference.subject, error)

    async def _latest_runs(self) -> dict[str, WorkflowExecution]:
        """The newest run of each job workflow of the task queue that visibility still holds."""
        latest: dict[str, WorkflowExecution] = {}
        query = f"TaskQueue = '{self._launcher.task_queue}'"
        async for execution in self._client.list_workflows(query):
            if execution.workflow_type not in SPEC_BY_WORKFLOW_NAME:
                continue
            known = latest.get(execution.id)
            if known is None or execution.start_time > known.start_time:
                latest[execution.id] = execution
        return latest

    def _load(self) -> tuple[dict[str, RowState], dict[str, set[str]]]:
        with self._db.reading() as connection:
            return row_states(connection), archived_runs(connection)

    async def _confirm(
        self, job_id: str, row: RowState | None, archived: set[str]
    ) -> Difference | None:
        """Ask `describe` about a suspect; None when the truth agrees with the row after all."""
        event = await observe_job(self._client, job_id)
        now = utcnow()
        if row is None:
            if event is None or self._cleaned_up(event, now):
                return None
            return Difference(
                DifferenceKind.MISSING_ROW,
                job_id,
                f"the workflow of a {event.job_type} job (run {event.run_id}) is "
                f"{event.status} in Temporal, but the jobs table has no row for it",
                event,
            )
        if now - row.updated_at < SETTLE_GRACE:
            # Caught mid-step: an open row catching up, or a finished one whose workflow
            # recorded its end an instant before closing.
            return None
        if event is None or (event.run_id in archived and row.run_id is None):
            return _missing_workflow(row, now)
        if row.run_id is None and not event.status.is_terminal:
            # Submitted, and its work has not begun yet (no worker has picked it up): the
            # row learns its run id when the work first reports.
            return None
        if event.run_id != row.run_id and row.run_id is not None:
            return Difference(
                DifferenceKind.RUN_MISMATCH,
                job_id,
                f"the row names run {row.run_id}, but Temporal's latest run is "
                f"{event.run_id} ({event.status})",
                event,
            )
        if event.status != row.status:
            return Difference(
                DifferenceKind.WRONG_STATUS, job_id, _status_detail(row, event), event
            )
        return None

    def _cleaned_up(self, event: JobEvent, now: datetime) -> bool:
        return event.status.is_terminal and event.at < now - self._keep_closed_for

    async def _repair(self, difference: Difference) -> bool:
        if difference.kind is DifferenceKind.COUNT_DRIFT:
            # One recount repairs every project's drift; the next ones find nothing to do.
            await self._db.run(rebuild_counts)
            return True
        job_id = difference.job_id
        assert job_id is not None
        if difference.kind is DifferenceKind.NOT_STARTED:
            return await self._start(job_id)
        if difference.kind is DifferenceKind.ORPHAN_ROW:
            return await self._db.run(lambda session: _fail_orphan(session, job_id))
        event = difference.event
        assert event is not None
        if difference.kind is DifferenceKind.RUN_MISMATCH:
            await self._close_row_run(job_id)
        return await self._db.run(lambda session: apply_observed(session, event))

    async def _close_row_run(self, job_id: str) -> None:
        """The row's own run ended unseen before the newer one began: record its end first."""
        row = await self._db.run(lambda session: find_job(session, job_id))
        if row is None or row.run_id is None or JobStatus(row.status).is_terminal:
            return
        previous = await observe_job(self._client, job_id, row.run_id)
        if previous is not None:
            await self._db.run(lambda session: apply_event(session, previous))

    async def _start(self, job_id: str) -> bool:
        job = await self._db.run(lambda session: find_job(session, job_id))
        if job is None or job.run_id is not None:
            return False
        return await start_unstarted(self._db, self._launcher, job)


def _status_detail(row: RowState, event: JobEvent) -> str:
    why = f" ({event.error.type})" if event.error else ""
    detail = f"the row says {row.status}, but its workflow is {event.status}{why} in Temporal"
    if row.status.is_terminal and not event.status.is_terminal:
        # A finished row never moves back: it is repaired when the workflow closes.
        detail += "; a finished row is not moved back, it follows the workflow once it closes"
    return detail


def _drifted(drift: CountDrift) -> Difference:
    return Difference(
        DifferenceKind.COUNT_DRIFT,
        None,
        f"the statistics count {drift.counted} {drift.status} {drift.type} jobs, "
        f"but the table holds {drift.actual}",
        project_id=drift.project_id,
    )


def _suspect(
    row: RowState | None, execution: WorkflowExecution | None, archived: Iterable[str]
) -> bool:
    """Whether visibility's listing disagrees with the row enough to ask `describe`."""
    if row is None:
        return True
    if execution is None or execution.run_id != row.run_id:
        # No workflow listed: an open row is suspect, a finished one may be past retention.
        return row.status in _OPEN_STATUSES or (
            execution is not None and execution.run_id not in archived
        )
    if execution.status in (None, WorkflowExecutionStatus.RUNNING):
        return row.status.is_terminal
    return closed_status(execution.status) != row.status


def _missing_workflow(row: RowState, now: datetime) -> Difference | None:
    if row.status is JobStatus.QUEUED and row.run_id is None:
        if now - row.updated_at < ORPHAN_GRACE:
            return None
        return Difference(
            DifferenceKind.NOT_STARTED,
            row.id,
            f"queued since {row.updated_at:%Y-%m-%d %H:%M:%S} UTC, "
            "but its workflow was never started",
        )
    if row.status.is_terminal:
        return None
    return Difference(
        DifferenceKind.ORPHAN_ROW,
        row.id,
        f"the row says {row.status} (run {row.run_id}), but Temporal has no such workflow",
    )


_WORKFLOW_MISSING = FailureInfo(
    type="WorkflowMissing",
    message="Temporal has no workflow for this job any more; retry it to run it again.",
)


def _fail_orphan(session: Session, job_id: str) -> bool:
    """An open row whose workflow is gone can never finish: fail it, so it can be retried."""
    job = find_job(session, job_id)
    if job is None or job.run_id is None:
        return False
    now = utcnow()
    event = JobEvent(
        job_id=job.id,
        run_id=job.run_id,
        job_type=job.type,
        project_id=job.project_id,
        params=job.params,
        status=JobStatus.FAILED,
        at=now,
        created_at=job.created_at,
        error=_WORKFLOW_MISSING,
    )
    return apply_event(session, event)
