"""The consistency check an operator runs: the jobs table against Temporal, every difference.

The reconciler repairs what changed lately; the doctor looks at everything the task
queue still has in Temporal's visibility (open workflows, closed ones within retention)
and every row, so that whatever a crash, an outage or a hand edit left behind is named.
Both judge with `judge.classify` and repair with `repair.Repairs`: visibility only points
at suspects, each is confirmed with `describe` (the truth for one workflow) before it is
reported, since visibility lags.
"""

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from pastools_jobs.audit.service import AuditTrail
from pastools_jobs.audit.trail import DOCTOR, AuditAction
from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import JobEvent
from pastools_jobs.counts import CountDrift, count_drift
from pastools_jobs.db.engine import Database
from pastools_jobs.domain import JobError
from pastools_jobs.job_catalog import SPEC_BY_WORKFLOW_NAME
from pastools_jobs.mirror.judge import Difference, Grace, ObservedRun, awaits_close, classify
from pastools_jobs.mirror.listing import ListedRun, list_runs
from pastools_jobs.mirror.observe import observe_job
from pastools_jobs.mirror.repair import Repairs
from pastools_jobs.repository import RowState, archived_runs, find_job, row_states
from pastools_jobs.temporal import JobLauncher

log = logging.getLogger(__name__)

SETTLE_GRACE = timedelta(seconds=10)
"""A row written this recently may only be catching up with its workflow: not judged yet."""


@dataclass
class Finding:
    kind: Difference
    job_id: str | None
    """None for a difference of a project's statistics rather than of one job."""
    detail: str
    row: RowState | None = field(default=None, repr=False)
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
    differences: list[Finding]

    @property
    def consistent(self) -> bool:
        return not self.differences

    @property
    def unrepaired(self) -> list[Finding]:
        return [difference for difference in self.differences if not difference.repaired]


class Doctor:
    """Finds the differences between the jobs table and Temporal, and repairs them."""

    def __init__(self, db: Database, launcher: JobLauncher, keep_closed_for: timedelta) -> None:
        """`keep_closed_for`: closed workflows older than this lost their row to cleanup."""
        self._db = db
        self._launcher = launcher
        self._client: Client = launcher.client
        self._repairs = Repairs(db, launcher, metered=False)  # a one-off run: nothing scrapes it
        self._trail = AuditTrail(db)
        self._grace = Grace(settle=SETTLE_GRACE, rows_kept_for=keep_closed_for)

    async def examine(self) -> Report:
        latest = await self._latest_runs()
        rows, archived = await asyncio.to_thread(self._load)
        now = utcnow()
        differences: list[Finding] = []
        for job_id in sorted(latest.keys() | rows.keys()):
            row, listed = rows.get(job_id), latest.get(job_id)
            past = archived.get(job_id, set())
            if classify(row, listed, past, now, self._grace) is not None:
                found = await self._confirm(job_id, row, past)
                if found is not None:
                    differences.append(found)
        differences += [_drifted(drift) for drift in await self._db.run(count_drift)]
        return Report(rows=len(rows), workflows=len(latest), differences=differences)

    async def repair(self, report: Report) -> None:
        """Repair each difference; one that cannot be repaired now stays marked unrepaired."""
        for found in report.differences:
            try:
                found.repaired = await self._repairs.repair(found.kind, found.row, found.event)
            except (RPCError, JobError, WorkflowAlreadyStartedError) as error:
                log.warning("could not repair %s: %s", found.subject, error)
            if found.repaired:
                await self._trail.record(
                    DOCTOR,
                    AuditAction.DOCTOR_REPAIR,
                    project_id=await self._project_of(found),
                    job_id=found.job_id,
                    details={"difference": found.kind.value, "detail": found.detail},
                )

    async def _project_of(self, found: Finding) -> str | None:
        """The project whose operators read the repair in the trail: as the finding knows
        it, else (a row without a workflow) as the repaired row says."""
        if found.project_id is not None:
            return found.project_id
        if found.event is not None:
            return found.event.project_id
        job_id = found.job_id
        if job_id is None:
            return None
        job = await self._db.run(lambda session: find_job(session, job_id))
        return job.project_id if job is not None else None

    async def _latest_runs(self) -> dict[str, ListedRun]:
        """The newest run of each job workflow of the task queue that visibility still holds."""
        latest: dict[str, ListedRun] = {}
        query = f"TaskQueue = '{self._launcher.task_queue}'"
        async for run in list_runs(self._client, query):
            if run.workflow_type not in SPEC_BY_WORKFLOW_NAME:
                continue
            known = latest.get(run.job_id)
            if known is None or run.started_at > known.started_at:
                latest[run.job_id] = run
        return latest

    def _load(self) -> tuple[dict[str, RowState], dict[str, set[str]]]:
        with self._db.reading() as connection:
            return row_states(connection), archived_runs(connection)

    async def _confirm(
        self, job_id: str, row: RowState | None, archived: set[str]
    ) -> Finding | None:
        """Ask `describe` about a suspect; None when the truth agrees with the row after all."""
        event = await observe_job(self._client, job_id)
        run = ObservedRun.of(event)
        kind = classify(row, run, archived, utcnow(), self._grace)
        if kind is None:
            return None
        return Finding(kind, job_id, _detail(kind, row, event), row, event)


def _detail(kind: Difference, row: RowState | None, event: JobEvent | None) -> str:
    if kind is Difference.MISSING_ROW:
        assert event is not None
        return (
            f"the workflow of a {event.job_type} job (run {event.run_id}) is "
            f"{event.status} in Temporal, but the jobs table has no row for it"
        )
    assert row is not None
    if kind is Difference.NOT_STARTED:
        return (
            f"queued since {row.updated_at:%Y-%m-%d %H:%M:%S} UTC, "
            "but its workflow was never started"
        )
    if kind is Difference.ORPHAN_ROW:
        return f"the row says {row.status} (run {row.run_id}), but Temporal has no such workflow"
    assert event is not None
    if kind is Difference.RUN_MISMATCH:
        return (
            f"the row names run {row.run_id}, but Temporal's latest run is "
            f"{event.run_id} ({event.status})"
        )
    why = f" ({event.error.type})" if event.error else ""
    detail = f"the row says {row.status}, but its workflow is {event.status}{why} in Temporal"
    if awaits_close(row, ObservedRun.of(event)):
        detail += "; a finished row is not moved back, it follows the workflow once it closes"
    return detail


def _drifted(drift: CountDrift) -> Finding:
    return Finding(
        Difference.COUNT_DRIFT,
        None,
        f"the statistics count {drift.counted} {drift.status} {drift.type} jobs, "
        f"but the table holds {drift.actual}",
        project_id=drift.project_id,
    )
