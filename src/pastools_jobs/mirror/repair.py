"""One repair per difference the judge finds, used by the reconciler and the doctor alike.

Each goes through the idempotent functions of `apply.py`, which never move an open row
backwards and change a finished one only to what its closed run says, so repeating a
repair, or two mirrors making it at once, changes nothing more.
"""

import logging

from sqlalchemy.orm import Session
from temporalio.client import Client

from pastools_jobs.clock import utcnow
from pastools_jobs.contracts import FailureInfo, JobEvent
from pastools_jobs.counts import rebuild_counts
from pastools_jobs.db.engine import Database
from pastools_jobs.domain import JobStatus
from pastools_jobs.metrics import observe_finished
from pastools_jobs.mirror.apply import apply_event, apply_observed, end_unstarted, record_run
from pastools_jobs.mirror.judge import Difference
from pastools_jobs.mirror.observe import observe_job
from pastools_jobs.repository import RowState, find_job
from pastools_jobs.temporal import JobLauncher

log = logging.getLogger(__name__)


class Repairs:
    def __init__(self, db: Database, launcher: JobLauncher, *, metered: bool) -> None:
        """`metered`: count the jobs a repair ends in the process's metrics."""
        self._db = db
        self._launcher = launcher
        self._client: Client = launcher.client
        self._metered = metered

    async def repair(
        self, difference: Difference, row: RowState | None, event: JobEvent | None
    ) -> bool:
        """Repair `difference` between `row` and `event` (Temporal's latest run of the job,
        as `observe_job` read it); whether the table now says what Temporal says."""
        if difference is Difference.COUNT_DRIFT:
            # One recount repairs every project's drift; the next ones find nothing to do.
            await self._db.run(rebuild_counts)
            return True
        if difference is Difference.NOT_STARTED:
            assert row is not None
            return await self._start(row.id)
        if difference is Difference.ORPHAN_ROW:
            assert row is not None
            job_id = row.id
            return await self._db.run(lambda session: _fail_orphan(session, job_id))
        assert event is not None
        if difference is Difference.RUN_MISMATCH:
            assert row is not None and row.run_id is not None
            await self._close_run(row.id, row.run_id)
        applied = await self._db.run(lambda session: apply_observed(session, event))
        if applied and event.status.is_terminal and self._metered:
            observe_finished(event, applied.started_at)  # a terminate, a timeout: unrecorded
        return applied is not None

    async def _close_run(self, job_id: str, run_id: str) -> None:
        """Record how the row's own run ended, unseen, before a newer one began: an open row
        ends as that run did, and a finished one that disagrees with it follows it, so that
        the attempt the newer run archives says what Temporal says."""
        previous = await observe_job(self._client, job_id, run_id)
        if previous is not None:
            await self._db.run(lambda session: apply_observed(session, previous))

    async def _start(self, job_id: str) -> bool:
        """Start the workflow of a row a crash left without one; whether the row now has a
        run. Another replica may be starting it at the same moment: starting an id that has
        started is success. A row whose cancel was requested is never started: it ends
        cancelled (an earlier version stamped the request before sending it, and a crash
        could come between)."""
        job = await self._db.run(lambda session: find_job(session, job_id))
        if job is None or job.run_id is not None or job.status != JobStatus.QUEUED:
            return False
        if job.cancel_requested_at is not None:
            return await self._db.run(
                lambda session: end_unstarted(
                    session.connection(), job_id, JobStatus.CANCELLED, _CANCELLED_BEFORE_START
                )
            )
        log.info("starting job %s, whose workflow was never started", job_id)
        run_id = await self._launcher.ensure_started(job)
        if run_id is None:
            return True
        return await self._db.run(lambda session: record_run(session, job_id, run_id))


_CANCELLED_BEFORE_START = FailureInfo(
    type="Cancelled", message="The job was cancelled before its workflow started."
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
    event = JobEvent(
        job_id=job.id,
        run_id=job.run_id,
        job_type=job.type,
        project_id=job.project_id,
        params=job.params,
        status=JobStatus.FAILED,
        at=utcnow(),
        created_at=job.created_at,
        error=_WORKFLOW_MISSING,
    )
    return apply_event(session, event) is not None
